//! The Lua prelude of every Redis script (but `INDEX_REMOVE_IF_OLD`): the queue's key names and
//! the helpers the scripts share (records, settling, appending and dropping messages, byte
//! accounting).

pub(super) const PRELUDE: &str = r#"
local QK = KEYS[1]
local P = string.sub(QK, 1, -2)
local K = {
  q = QK, ctr = P .. 'ctr', msgs = P .. 'msgs', all = P .. 'all', exp = P .. 'exp',
  free = P .. 'free', clm = P .. 'clm', dly = P .. 'dly', cex = P .. 'cex',
  obt = P .. 'obt', obp = P .. 'obp', obl = P .. 'obl', xd = P .. 'xd',
  subs = P .. 'subs', sids = P .. 'sids', suri = P .. 'suri', sctr = P .. 'sctr',
  nq = P .. 'nq', nbm = P .. 'nbm', nbs = P .. 'nbs', nbl = P .. 'nbl', nctr = P .. 'nctr',
  sz = P .. 'sz', by = P .. 'by', bx = P .. 'bx', bxs = P .. 'bxs'
}
-- Subscription record fields: 1 subscriber, 2 ttl, 3 created, 4 expires, 5 options JSON,
-- 6 confirmed (0/1), 7 secret, 8 delivered, 9 failed, 10 last error ('' none).
local function hmget(key, fields)
  local out = {}
  for i = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + 999, #fields)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
local function drop_batch(seq)
  redis.call('HDEL', K.nbm, seq)
  redis.call('HDEL', K.nbs, seq)
  redis.call('HDEL', K.nbl, seq)
  redis.call('ZREM', K.nq, seq)
end
-- Record fields: 1 suffix, 2 ttl, 3 created, 4 expires, 5 client, 6 claim id ('' none),
-- 7 claim expiry, 8 claim count, 9 delay expiry, 10 checksum, 11 encrypted, 12 moved from,
-- 13 body.
local decode = cmsgpack.unpack
local encode = cmsgpack.pack
local function num(x) return string.format('%.0f', x) end
local function ckey(c) return P .. 'c:' .. c end
-- cmd key a1 a2 ... in chunks (list length must keep pairs together: chunks are even).
local function vcall(cmd, key, list)
  for i = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
  end
end
local function fetch(ms)
  local out = {}
  for i = 1, #ms, 1000 do
    local part = redis.call('HMGET', K.msgs, unpack(ms, i, math.min(i + 999, #ms)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
-- Byte accounting: the expiry second of an expiry in ms (as `storage::expiry_second`), and
-- changes {second = delta} applied to `bx`/`bxs` (and `by` by `total`).
local function second(e) return math.ceil(tonumber(e) / 1000) end
local function account(changes, total)
  for s, d in pairs(changes) do
    if d ~= 0 then
      local v = redis.call('HINCRBY', K.bx, num(s), num(d))
      if v <= 0 then
        redis.call('HDEL', K.bx, num(s))
        redis.call('ZREM', K.bxs, num(s))
      else
        redis.call('ZADD', K.bxs, s, num(s))
      end
    end
  end
  if total ~= 0 and redis.call('INCRBY', K.by, num(total)) <= 0 then redis.call('DEL', K.by) end
end
-- Moves the bytes of message m from expiry `from` to `to` (a claim extended its life).
local function bytes_moved(m, from, to)
  if second(from) == second(to) then return end
  local size = tonumber(redis.call('HGET', K.sz, m) or '0') or 0
  if size > 0 then account({[second(from)] = -size, [second(to)] = size}, 0) end
end
local function drop_many(ms)
  if #ms == 0 then return end
  local seen, uniq = {}, {}
  for _, m in ipairs(ms) do
    if not seen[m] then seen[m] = true; uniq[#uniq + 1] = m end
  end
  ms = uniq
  local sizes = hmget(K.sz, ms)
  local changes, total = {}, 0
  for i, m in ipairs(ms) do
    local size = sizes[i] and tonumber(sizes[i]) or 0
    if size > 0 then
      local e = redis.call('ZSCORE', K.exp, m)
      if e then
        local s = second(e)
        changes[s] = (changes[s] or 0) - size
        total = total - size
      end
    end
  end
  vcall('HDEL', K.sz, ms)
  account(changes, total)
  vcall('HDEL', K.msgs, ms)
  for _, set in ipairs({K.all, K.exp, K.free, K.clm, K.dly}) do vcall('ZREM', set, ms) end
end
local function reap(now, n)
  local dead = redis.call('ZRANGEBYSCORE', K.exp, '-inf', now, 'LIMIT', 0, n)
  drop_many(dead)
  local dc = redis.call('ZRANGEBYSCORE', K.cex, '-inf', now, 'LIMIT', 0, n)
  for _, c in ipairs(dc) do redis.call('DEL', ckey(c)) end
  if #dc > 0 then vcall('ZREM', K.cex, dc) end
  return #dead + #dc
end
local function settle(now)
  for _, set in ipairs({K.clm, K.dly}) do
    local due = redis.call('ZRANGEBYSCORE', set, '-inf', now)
    if #due > 0 then
      local add = {}
      for _, m in ipairs(due) do add[#add + 1] = m; add[#add + 1] = m end
      vcall('ZADD', K.free, add)
      redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    end
  end
end
local function ensure_queue(now)
  if redis.call('EXISTS', K.q) == 0 then
    redis.call('HSET', K.q, 'c', now, 'v', '1', 'md', '{}')
  end
  return redis.call('HEXISTS', K.q, 'ix')
end
local function split(s)
  local out = {}
  if s then for x in string.gmatch(s, '[^,]+') do table.insert(out, x) end end
  return out
end
-- Appends records (already encoded) with expiry e, delay expiry d and body bytes b each:
-- {rec, e, d, b}...
local function append(items, now)
  local n = #items
  if n == 0 then return end
  local last = redis.call('INCRBY', K.ctr, n)
  local first = last - n + 1
  local hs, all, exp, free, dly, sz = {}, {}, {}, {}, {}, {}
  local changes, total = {}, 0
  for i, it in ipairs(items) do
    local m = num(first + i - 1)
    hs[#hs + 1] = m; hs[#hs + 1] = it[1]
    all[#all + 1] = m; all[#all + 1] = m
    exp[#exp + 1] = it[2]; exp[#exp + 1] = m
    local size = tonumber(it[4])
    sz[#sz + 1] = m; sz[#sz + 1] = size
    local s = second(it[2])
    changes[s] = (changes[s] or 0) + size
    total = total + size
    if tonumber(it[3]) > now then
      dly[#dly + 1] = it[3]; dly[#dly + 1] = m
    else
      free[#free + 1] = m; free[#free + 1] = m
    end
  end
  vcall('HSET', K.msgs, hs)
  vcall('ZADD', K.all, all)
  vcall('ZADD', K.exp, exp)
  if #free > 0 then vcall('ZADD', K.free, free) end
  if #dly > 0 then vcall('ZADD', K.dly, dly) end
  vcall('HSET', K.sz, sz)
  account(changes, total)
  return first
end
-- UNLINK: large queues are freed by Redis in the background instead of blocking it.
local function purge()
  local cs = redis.call('ZRANGE', K.cex, 0, -1)
  for _, c in ipairs(cs) do redis.call('UNLINK', ckey(c)) end
  redis.call('UNLINK', K.msgs, K.all, K.exp, K.free, K.clm, K.dly, K.cex, K.sz, K.by, K.bx,
             K.bxs)
end
local function active(r, now)
  return r[6] ~= '' and r[7] > now
end
"#;
