//! The Lua scripts of the Redis store. Each script works on one queue: `KEYS[1]` is the queue
//! record and every other key it touches is derived from it, so they share its hash slot and the
//! script is atomic on one shard. Scripts are sent with EVALSHA and loaded on NOSCRIPT by
//! [`redis::Script`].
//!
//! Per-queue keys (`P` is `KEYS[1]` without its final `q`):
//! - `P q`      hash: `c` created, `v` metadata version, `md` metadata JSON, `ix` = indexed
//! - `P ctr`    last marker handed out (INCRBY)
//! - `P msgs`   hash marker → message record (MessagePack array, see [`super::Record`])
//! - `P all`    zset marker→marker: every stored message
//! - `P exp`    zset marker→expiry: for expiry and reclamation
//! - `P free`   zset marker→marker: neither claimed nor delayed
//! - `P clm`    zset marker→claim expiry: claimed (possibly lapsed) messages
//! - `P dly`    zset marker→delay expiry: delayed (possibly due) messages
//! - `P c:<claim>` hash: `t` ttl, `u` updated, `e` expires, `m` comma-separated markers
//! - `P cex`    zset claim id→expiry
//! - `P obt`/`P obp`/`P obl` hashes transfer id → target / payload / lease (outbox)
//! - `P xd`     hash transfer id → time applied (done-markers of incoming transfers)
//! - `P subs`   hash subscription id → record (MessagePack array, see `SUB_*`)
//! - `P sids`   zset (scores 0) of subscription ids: lexical = creation order
//! - `P suri`   hash subscriber URI → subscription id; `P sctr` the id counter
//! - `P nq`     zset seq→seq: pending notification batches, oldest first; `P nctr` their counter
//! - `P nbm`    hash seq → {first marker, {message record}...} (copies of the posted messages)
//! - `P nbs`    hash seq → {pending subscription ids, those unconfirmed at posting time}
//! - `P nbl`    hash seq → lease expiry (absent: never leased)
//! - `P sz`     hash marker → body bytes (byte accounting; absent for messages stored before it)
//! - `P by`     body bytes of every message in `sz` (expired-but-unreaped included)
//! - `P bx`     hash expiry second → body bytes of the messages expiring in it (rows at 0 go)
//! - `P bxs`    zset second→second: the seconds present in `bx`, to sum those already past
//!
//! Every message is in `msgs`, `all` and `exp` and in exactly one of `free`, `clm`, `dly`.
//! Byte accounting (`sz`, `by`, `bx`, `bxs`) changes only in `append` and `drop_many` (and
//! `bytes_moved` when a claim extends a message's life), in the script that stores or removes
//! the message.
//! Entries of `clm` and `dly` whose score has passed are moved to `free` by `settle` at the start
//! of the scripts that take messages; lapsed claims and expired messages are filtered by every
//! read. Records are read and written in batches (one HMGET / HSET per step, not per message).

use redis::Script;

const PRELUDE: &str = r#"
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

/// ARGV: now, created-metadata JSON. Returns {created, indexed}.
const CREATE_QUEUE: &str = r#"
if redis.call('EXISTS', K.q) == 1 then
  return {0, redis.call('HEXISTS', K.q, 'ix')}
end
redis.call('HSET', K.q, 'c', ARGV[1], 'v', '1', 'md', ARGV[2])
return {1, 0}
"#;

/// Marks the queue as present in its project index. Returns whether the queue exists.
const MARK_INDEXED: &str = r#"
if redis.call('EXISTS', K.q) == 0 then return 0 end
redis.call('HSET', K.q, 'ix', '1')
return 1
"#;

/// ARGV: expected version, metadata JSON. Returns -1 missing, 0 stale, 1 replaced.
const REPLACE_METADATA: &str = r#"
local v = redis.call('HGET', K.q, 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', K.q, 'v', num(tonumber(v) + 1), 'md', ARGV[2])
return 1
"#;

/// First step of a queue deletion: the queue stops counting as indexed, so a crash before the
/// deletion completes lets the next write re-index it.
const UNMARK_INDEXED: &str = r#"
redis.call('HDEL', K.q, 'ix')
return 1
"#;

/// Deletes the queue with its messages and claims, unless moves out of it are still pending
/// (returns 0; the caller drains them and retries).
const DELETE_QUEUE: &str = r#"
if redis.call('HLEN', K.obt) > 0 then return 0 end
purge()
redis.call('DEL', K.q, K.ctr, K.obl)
return 1
"#;

const PURGE: &str = r#"
purge()
return 1
"#;

/// ARGV: now, channel, event, then per message: record, expires, delay expires, body bytes.
/// Returns {indexed, first marker}.
const POST: &str = r#"
local now = tonumber(ARGV[1])
local ix = ensure_queue(ARGV[1])
reap(now, 16)
local items = {}
for b = 4, #ARGV, 4 do
  items[#items + 1] = {ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]}
end
local first = append(items, now)
-- The notification batch, in the same script as the messages (see SUB_* below).
local batch = 0
if first and redis.call('EXISTS', K.subs) == 1 then
  local ids = redis.call('ZRANGE', K.sids, 0, -1)
  local raws = hmget(K.subs, ids)
  local pending, unconfirmed = {}, {}
  for i, id in ipairs(ids) do
    if raws[i] then
      local r = decode(raws[i])
      if r[4] > now then
        pending[#pending + 1] = id
        if r[6] ~= 1 then unconfirmed[#unconfirmed + 1] = id end
      end
    end
  end
  if #pending > 0 then
    local seq = num(redis.call('INCR', K.nctr))
    local recs = {}
    for i, it in ipairs(items) do recs[i] = it[1] end
    redis.call('HSET', K.nbm, seq, encode({first, recs}))
    redis.call('HSET', K.nbs, seq, encode({pending, unconfirmed}))
    redis.call('ZADD', K.nq, seq, seq)
    batch = 1
  end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {ix, num(first or 0), batch}
"#;

/// ARGV: now, subscriber URI, record (without id), random id part.
/// Returns {0 new | 1 existing unconfirmed | 2 existing confirmed, id}.
const SUB_CREATE: &str = r#"
local now = tonumber(ARGV[1])
local uri = ARGV[2]
local old = redis.call('HGET', K.suri, uri)
if old then
  local raw = redis.call('HGET', K.subs, old)
  if raw then
    local r = decode(raw)
    if r[4] > now then
      if r[6] == 1 then return {2, old} end
      return {1, old}
    end
    -- An expired subscription with that URI: replace it.
    redis.call('HDEL', K.subs, old)
    redis.call('ZREM', K.sids, old)
  end
end
local id = string.format('%016x', redis.call('INCR', K.sctr)) .. ARGV[4]
redis.call('HSET', K.subs, id, ARGV[3])
redis.call('ZADD', K.sids, 0, id)
redis.call('HSET', K.suri, uri, id)
return {0, id}
"#;

/// ARGV: now, marker ('' none), limit. Returns {id, record}... of live subscriptions after the
/// marker in id order.
const SUB_LIST: &str = r#"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[3])
local start = '-'
if ARGV[2] ~= '' then start = '(' .. ARGV[2] end
local out = {}
local found = 0
while found < limit do
  local ids = redis.call('ZRANGEBYLEX', K.sids, start, '+', 'LIMIT', 0, 64)
  if #ids == 0 then break end
  local raws = hmget(K.subs, ids)
  for i, id in ipairs(ids) do
    start = '(' .. id
    if raws[i] and decode(raws[i])[4] > now then
      out[#out + 1] = id
      out[#out + 1] = raws[i]
      found = found + 1
      if found >= limit then break end
    end
  end
end
return out
"#;

/// ARGV: now, id. Returns the record of a live subscription, or nil.
const SUB_GET: &str = r#"
local raw = redis.call('HGET', K.subs, ARGV[2])
if raw and decode(raw)[4] > tonumber(ARGV[1]) then return raw end
return false
"#;

/// ARGV: now, id, has subscriber, subscriber, has ttl, ttl, new expiry, has options, options.
/// Returns 0 updated, 1 not found, 2 subscriber taken by another live subscription.
const SUB_UPDATE: &str = r#"
local now = tonumber(ARGV[1])
local id = ARGV[2]
local raw = redis.call('HGET', K.subs, id)
if not raw then return 1 end
local r = decode(raw)
if r[4] <= now then return 1 end
if ARGV[3] == '1' and ARGV[4] ~= r[1] then
  local other = redis.call('HGET', K.suri, ARGV[4])
  if other and other ~= id then
    local oraw = redis.call('HGET', K.subs, other)
    if oraw and decode(oraw)[4] > now then return 2 end
    if oraw then
      redis.call('HDEL', K.subs, other)
      redis.call('ZREM', K.sids, other)
    end
  end
  if redis.call('HGET', K.suri, r[1]) == id then redis.call('HDEL', K.suri, r[1]) end
  redis.call('HSET', K.suri, ARGV[4], id)
  r[1] = ARGV[4]
end
if ARGV[5] == '1' then
  r[2] = tonumber(ARGV[6])
  r[4] = tonumber(ARGV[7])
end
if ARGV[8] == '1' then r[5] = ARGV[9] end
redis.call('HSET', K.subs, id, encode(r))
return 0
"#;

/// ARGV: id. Deletes the subscription if it exists.
const SUB_DELETE: &str = r#"
local id = ARGV[1]
local raw = redis.call('HGET', K.subs, id)
if not raw then return 0 end
local r = decode(raw)
redis.call('HDEL', K.subs, id)
redis.call('ZREM', K.sids, id)
if redis.call('HGET', K.suri, r[1]) == id then redis.call('HDEL', K.suri, r[1]) end
return 1
"#;

/// ARGV: now, id, confirmed (0/1). Returns 1 when a live subscription was changed.
const SUB_CONFIRM: &str = r#"
local raw = redis.call('HGET', K.subs, ARGV[2])
if not raw then return 0 end
local r = decode(raw)
if r[4] <= tonumber(ARGV[1]) then return 0 end
r[6] = tonumber(ARGV[3])
redis.call('HSET', K.subs, ARGV[2], encode(r))
return 1
"#;

/// Deletes every subscription of the source (the id counter stays: ids never repeat).
const SUB_PURGE: &str = r#"
redis.call('DEL', K.subs, K.sids, K.suri)
return 1
"#;

/// Removes expired subscriptions. ARGV: now. Returns {removed, subscriptions left, batches}.
const SUB_SWEEP: &str = r#"
local now = tonumber(ARGV[1])
local removed = 0
local ids = redis.call('ZRANGE', K.sids, 0, -1)
local raws = hmget(K.subs, ids)
for i, id in ipairs(ids) do
  local r = raws[i] and decode(raws[i])
  if not r or r[4] <= now then
    redis.call('HDEL', K.subs, id)
    redis.call('ZREM', K.sids, id)
    if r and redis.call('HGET', K.suri, r[1]) == id then redis.call('HDEL', K.suri, r[1]) end
    removed = removed + 1
  end
end
return {removed, redis.call('HLEN', K.subs), redis.call('ZCARD', K.nq)}
"#;

/// Drops the counters of a source that has neither subscriptions nor batches (after the sweep
/// removed it from the index of sources). Returns 1 if dropped.
const SUB_FORGET: &str = r#"
if redis.call('EXISTS', K.subs) == 1 or redis.call('EXISTS', K.nq) == 1 then return 0 end
redis.call('DEL', K.sctr, K.nctr, K.nbm, K.nbs, K.nbl)
return 1
"#;

/// Leases the source's oldest free batches. ARGV: now, lease ms, most batches, scan budget.
/// Subscriptions deleted or expired since the post are dropped from a batch (a batch left with
/// none is removed). Returns {batches left in the source,
/// {{seq, {marker, record}..., {id, record, confirmed at posting}...}...}}.
const NOTIFY_LEASE: &str = r#"
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[3])
local seqs = redis.call('ZRANGE', K.nq, 0, tonumber(ARGV[4]) - 1)
local out = {}
if #seqs > 0 then
  local leases = hmget(K.nbl, seqs)
  for i, seq in ipairs(seqs) do
    if #out >= want then break end
    if tonumber(leases[i] or '0') <= now then
      local sraw = redis.call('HGET', K.nbs, seq)
      local mraw = redis.call('HGET', K.nbm, seq)
      if not sraw or not mraw then
        drop_batch(seq)
      else
        local st = decode(sraw)
        local unconfirmed = {}
        for _, u in ipairs(st[2] or {}) do unconfirmed[u] = true end
        local pending, subs = {}, {}
        for _, id in ipairs(st[1] or {}) do
          local raw = redis.call('HGET', K.subs, id)
          if raw and decode(raw)[4] > now then
            pending[#pending + 1] = id
            subs[#subs + 1] = id
            subs[#subs + 1] = raw
            if unconfirmed[id] then subs[#subs + 1] = 0 else subs[#subs + 1] = 1 end
          end
        end
        if #pending == 0 then
          drop_batch(seq)
        else
          st[1] = pending
          redis.call('HSET', K.nbs, seq, encode(st))
          redis.call('HSET', K.nbl, seq, num(now + tonumber(ARGV[2])))
          local m = decode(mraw)
          local msgs = {}
          for j, rec in ipairs(m[2]) do
            msgs[#msgs + 1] = num(m[1] + j - 1)
            msgs[#msgs + 1] = rec
          end
          out[#out + 1] = {seq, msgs, subs}
        end
      end
    end
  end
end
return {redis.call('ZCARD', K.nq), out}
"#;

/// ARGV: seq, lease until. Extends the lease of a batch that still exists.
const NOTIFY_RENEW: &str = r#"
if redis.call('ZSCORE', K.nq, ARGV[1]) then
  redis.call('HSET', K.nbl, ARGV[1], ARGV[2])
  return 1
end
return 0
"#;

/// ARGV: groups of four (seq, subscription id, outcome: 0 delivered, 1 gave up, 2 skipped,
/// error text), all of this queue. Of several failures of one subscriber, the newest batch's
/// error is kept. Each batch state and each subscription record is read and
/// written once. Entries whose subscriber is no longer pending (replays) change nothing.
/// Returns how many entries were applied.
const NOTIFY_FINISH: &str = r#"
local states, order, changed = {}, {}, {}
local counts, corder = {}, {}
local applied = 0
for i = 1, #ARGV, 4 do
  local seq, sid, code = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local st = states[seq]
  if st == nil then
    local sraw = redis.call('HGET', K.nbs, seq)
    if sraw then st = decode(sraw) else st = false end
    states[seq] = st
    order[#order + 1] = seq
  end
  if st then
    local pending, found = {}, false
    for _, id in ipairs(st[1] or {}) do
      if id == sid and not found then found = true else pending[#pending + 1] = id end
    end
    if found then
      applied = applied + 1
      st[1] = pending
      changed[seq] = true
      if code ~= '2' then
        local c = counts[sid]
        if c == nil then
          c = {0, 0, false, false}
          counts[sid] = c
          corder[#corder + 1] = sid
        end
        if code == '0' then
          c[1] = c[1] + 1
        else
          c[2] = c[2] + 1
          local n = tonumber(seq)
          if not c[4] or n >= c[4] then c[3] = ARGV[i + 3]; c[4] = n end
        end
      end
    end
  end
end
for _, seq in ipairs(order) do
  local st = states[seq]
  if changed[seq] then
    if #st[1] == 0 then
      drop_batch(seq)
    else
      redis.call('HSET', K.nbs, seq, encode(st))
    end
  end
end
for _, sid in ipairs(corder) do
  local raw = redis.call('HGET', K.subs, sid)
  if raw then
    local r = decode(raw)
    local c = counts[sid]
    r[8] = r[8] + c[1]
    r[9] = r[9] + c[2]
    if c[3] then r[10] = c[3] end
    redis.call('HSET', K.subs, sid, encode(r))
  end
end
return applied
"#;

/// On a global index (KEYS[1], a sorted set): removes member ARGV[1] if its score is at most
/// ARGV[2]. Returns 1 if removed.
const INDEX_REMOVE_IF_OLD: &str = r#"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;

/// One chunk of a listing. ARGV: now, after (exclusive marker), want, include_claimed,
/// include_delayed, exclude client ('' for none), scan budget.
/// Returns {finished, last scanned marker, {marker, record}...}.
const LIST: &str = r#"
local now = tonumber(ARGV[1])
local want = tonumber(ARGV[3])
local claimed = ARGV[4] == '1'
local delayed = ARGV[5] == '1'
local excl = ARGV[6]
local budget = tonumber(ARGV[7])
local out = {}
local found = 0
local last = ARGV[2]
local scanned = 0
while found < want and scanned < budget do
  local n = math.min(math.max(want - found, 16), budget - scanned, 256)
  local ms = redis.call('ZRANGEBYSCORE', K.all, '(' .. last, '+inf', 'LIMIT', 0, n)
  if #ms == 0 then return {1, last, out} end
  local recs = fetch(ms)
  for i, m in ipairs(ms) do
    scanned = scanned + 1
    last = m
    local raw = recs[i]
    if raw then
      local r = decode(raw)
      if r[4] > now and (claimed or not active(r, now)) and (delayed or r[9] <= now)
         and (excl == '' or r[5] ~= excl) then
        out[#out + 1] = m
        out[#out + 1] = raw
        found = found + 1
        if found >= want then break end
      end
    end
  end
end
return {0, last, out}
"#;

/// ARGV: now, then pairs (marker, suffix). Returns the unexpired matches {marker, record}...
const GET: &str = r#"
local now = tonumber(ARGV[1])
local ms, sfx = {}, {}
for i = 2, #ARGV, 2 do ms[#ms + 1] = ARGV[i]; sfx[#sfx + 1] = ARGV[i + 1] end
local recs = fetch(ms)
local out = {}
for i, m in ipairs(ms) do
  local raw = recs[i]
  if raw then
    local r = decode(raw)
    if r[1] == sfx[i] and r[4] > now then
      out[#out + 1] = m
      out[#out + 1] = raw
    end
  end
end
return out
"#;

/// ARGV: now, with claim ids ('1'/'0'), claim id count, claim ids..., then pairs (marker,
/// suffix). Returns {0} when deleted, or {1, index of the offending pair (0-based)}.
const DELETE_BULK: &str = r#"
local now = tonumber(ARGV[1])
local check = ARGV[2] == '1'
local nc = tonumber(ARGV[3])
local cids = {}
for i = 1, nc do cids[ARGV[3 + i]] = true end
local ms, sfx = {}, {}
for i = 4 + nc, #ARGV, 2 do ms[#ms + 1] = ARGV[i]; sfx[#sfx + 1] = ARGV[i + 1] end
local recs = fetch(ms)
local targets = {}
for i, m in ipairs(ms) do
  local raw = recs[i]
  if raw then
    local r = decode(raw)
    if r[1] == sfx[i] and r[4] > now then
      if check and not (active(r, now) and cids[r[6]]) then return {1, i - 1} end
      targets[#targets + 1] = m
    end
  end
end
drop_many(targets)
return {0}
"#;

/// ARGV: now, marker, suffix, claim id ('' for none). Deletes exactly in the cases where
/// `decide_single_delete` answers `Ok(true)`; returns what it needs to decide:
/// {exists, active claim or nil, given claim live, deleted}.
const DELETE_ONE: &str = r#"
local now = tonumber(ARGV[1])
local m = ARGV[2]
local cid = ARGV[4]
local raw = redis.call('HGET', K.msgs, m)
local r = raw and decode(raw)
if not (r and r[1] == ARGV[3] and r[4] > now) then return {0, false, 0, 0} end
local own = false
if active(r, now) then own = r[6] end
local live = 0
if cid ~= '' then
  local ce = redis.call('HGET', ckey(cid), 'e')
  if ce and tonumber(ce) > now then live = 1 end
end
local del = 0
if (cid == '' and not own) or (cid ~= '' and own == cid) then
  drop_many({m})
  del = 1
end
return {1, own, live, del}
"#;

/// ARGV: now, limit. Removes and returns the oldest free messages {marker, record}...
const POP: &str = r#"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
settle(now)
local out = {}
local found = 0
while found < limit do
  local ms = redis.call('ZRANGE', K.free, 0, limit - found - 1)
  if #ms == 0 then break end
  local recs = fetch(ms)
  for i, m in ipairs(ms) do
    local raw = recs[i]
    if raw and decode(raw)[4] > now then
      out[#out + 1] = m
      out[#out + 1] = raw
      found = found + 1
    end
  end
  drop_many(ms)
end
return out
"#;

/// ARGV: now. Returns {total, claimed, delayed, oldest or nil, newest or nil}, each stamp
/// {marker, suffix, created}.
const STATS: &str = r#"
local now = tonumber(ARGV[1])
local total = redis.call('ZCARD', K.all) - redis.call('ZCOUNT', K.exp, '-inf', now)
local claimed = redis.call('ZCOUNT', K.clm, '(' .. now, '+inf')
local delayed = redis.call('ZCOUNT', K.dly, '(' .. now, '+inf')
local function stamp(rev)
  local off = 0
  while true do
    local ms
    if rev then ms = redis.call('ZREVRANGE', K.all, off, off + 63)
    else ms = redis.call('ZRANGE', K.all, off, off + 63) end
    if #ms == 0 then return false end
    local recs = fetch(ms)
    for i, m in ipairs(ms) do
      if recs[i] then
        local r = decode(recs[i])
        if r[4] > now then return {m, r[1], num(r[3])} end
      end
    end
    off = off + 64
  end
end
if total <= 0 then return {0, 0, 0, false, false} end
return {total, claimed, delayed, stamp(false), stamp(true)}
"#;

/// ARGV: now, claim id, ttl, grace, limit, dead-letter max claims (-1: none), dead-letter ttl
/// (-1: keep), transfer id, dead-letter queue, this queue's name.
/// Returns {moved count, {marker, record}...}.
const CLAIM: &str = r#"
local now = tonumber(ARGV[1])
local cid = ARGV[2]
local ttl = tonumber(ARGV[3])
local grace = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local dlmax = tonumber(ARGV[6])
local dlttl = tonumber(ARGV[7])
settle(now)
reap(now, 16)
local ce = now + ttl * 1000
local out, moved, picked, hs, clm, exp = {}, {}, {}, {}, {}, {}
local seen = 0
while seen < limit do
  local ms = redis.call('ZRANGE', K.free, 0, limit - seen - 1)
  if #ms == 0 then break end
  local recs = fetch(ms)
  local gone, taken = {}, {}
  for i, m in ipairs(ms) do
    local r = recs[i] and decode(recs[i])
    if not r or r[4] <= now then
      gone[#gone + 1] = m
    else
      seen = seen + 1
      if dlmax >= 0 and r[8] >= dlmax then
        r[6] = ''; r[7] = 0; r[8] = 0; r[12] = ARGV[10]
        if dlttl >= 0 then
          r[2] = dlttl
          r[4] = now + dlttl * 1000
        end
        moved[#moved + 1] = encode(r)
        gone[#gone + 1] = m
      else
        r[6] = cid; r[7] = ce; r[8] = r[8] + 1
        if r[4] < ce then
          bytes_moved(m, r[4], ce + grace * 1000)
          r[4] = ce + grace * 1000
          r[2] = ttl + grace
          exp[#exp + 1] = r[4]; exp[#exp + 1] = m
        end
        local rec = encode(r)
        hs[#hs + 1] = m; hs[#hs + 1] = rec
        clm[#clm + 1] = ce; clm[#clm + 1] = m
        out[#out + 1] = m; out[#out + 1] = rec
        picked[#picked + 1] = m
        taken[#taken + 1] = m
      end
    end
  end
  drop_many(gone)
  if #taken > 0 then vcall('ZREM', K.free, taken) end
end
if #moved > 0 then
  redis.call('HSET', K.obt, ARGV[8], ARGV[9])
  redis.call('HSET', K.obp, ARGV[8], encode(moved))
end
if #picked > 0 then
  vcall('HSET', K.msgs, hs)
  vcall('ZADD', K.clm, clm)
  if #exp > 0 then vcall('ZADD', K.exp, exp) end
  redis.call('HSET', ckey(cid), 't', ARGV[3], 'u', ARGV[1], 'e', num(ce),
             'm', table.concat(picked, ','))
  redis.call('ZADD', K.cex, ce, cid)
end
return {#moved, out}
"#;

/// ARGV: now, claim id. Returns {} for no live claim, else {ttl, updated, expires,
/// {marker, record}...}.
const GET_CLAIM: &str = r#"
local now = tonumber(ARGV[1])
local cid = ARGV[2]
local c = redis.call('HMGET', ckey(cid), 't', 'u', 'e', 'm')
if not c[3] or tonumber(c[3]) <= now then return {} end
local ms = split(c[4])
local recs = fetch(ms)
local out = {}
for i, m in ipairs(ms) do
  if recs[i] then
    local r = decode(recs[i])
    if r[4] > now and r[6] == cid and r[7] > now then
      out[#out + 1] = m
      out[#out + 1] = recs[i]
    end
  end
end
return {c[1], c[2], c[3], out}
"#;

/// ARGV: now, claim id, ttl, grace. Returns 1 renewed, 0 unknown or expired.
const RENEW: &str = r#"
local now = tonumber(ARGV[1])
local cid = ARGV[2]
local ttl = tonumber(ARGV[3])
local grace = tonumber(ARGV[4])
local c = redis.call('HMGET', ckey(cid), 'e', 'm')
if not c[1] or tonumber(c[1]) <= now then return 0 end
local ce = now + ttl * 1000
local ms = split(c[2])
local recs = fetch(ms)
local kept, hs, clm, exp = {}, {}, {}, {}
for i, m in ipairs(ms) do
  local r = recs[i] and decode(recs[i])
  if r and r[4] > now and r[6] == cid and r[7] > now then
    r[7] = ce
    if r[4] < ce then
      bytes_moved(m, r[4], ce + grace * 1000)
      r[4] = ce + grace * 1000
      r[2] = ttl + grace
      exp[#exp + 1] = r[4]; exp[#exp + 1] = m
    end
    hs[#hs + 1] = m; hs[#hs + 1] = encode(r)
    clm[#clm + 1] = ce; clm[#clm + 1] = m
    kept[#kept + 1] = m
  end
end
if #kept > 0 then
  vcall('HSET', K.msgs, hs)
  vcall('ZADD', K.clm, clm)
  if #exp > 0 then vcall('ZADD', K.exp, exp) end
end
redis.call('HSET', ckey(cid), 't', ARGV[3], 'u', ARGV[1], 'e', num(ce),
           'm', table.concat(kept, ','))
redis.call('ZADD', K.cex, ce, cid)
return 1
"#;

/// ARGV: now, claim id, channel, event. Ends the claim; its messages are free at once.
const RELEASE: &str = r#"
local now = tonumber(ARGV[1])
local cid = ARGV[2]
if redis.call('EXISTS', ckey(cid)) == 0 then return 0 end
local ms = split(redis.call('HGET', ckey(cid), 'm'))
local recs = fetch(ms)
local hs, free, freed = {}, {}, {}
for i, m in ipairs(ms) do
  local r = recs[i] and decode(recs[i])
  if r and r[6] == cid and r[7] > now then
    r[7] = now
    hs[#hs + 1] = m; hs[#hs + 1] = encode(r)
    free[#free + 1] = m; free[#free + 1] = m
    freed[#freed + 1] = m
  end
end
if #freed > 0 then
  vcall('HSET', K.msgs, hs)
  vcall('ZREM', K.clm, freed)
  vcall('ZADD', K.free, free)
end
redis.call('DEL', ckey(cid))
redis.call('ZREM', K.cex, cid)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"#;

/// ARGV: now, limit (-1: all), target ('' : each message's source), this queue's name,
/// transfer id base. Moves messages into the outbox, one transfer per target.
/// Returns {moved, skipped, {transfer id, target}...}.
const REDRIVE: &str = r#"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local target = ARGV[3]
local name = ARGV[4]
local moved, skipped = 0, 0
local groups, order = {}, {}
local last = '0'
local done = false
while not done do
  local ms = redis.call('ZRANGEBYSCORE', K.all, '(' .. last, '+inf', 'LIMIT', 0, 64)
  if #ms == 0 then break end
  local recs = fetch(ms)
  local gone = {}
  for i, m in ipairs(ms) do
    if limit >= 0 and moved >= limit then done = true; break end
    last = m
    local r = recs[i] and decode(recs[i])
    if r and r[4] > now and not active(r, now) then
      local dest = nil
      if target ~= '' then dest = target elseif r[12] ~= '' then dest = r[12] end
      if dest and dest ~= name then
        r[6] = ''; r[7] = 0; r[8] = 0; r[12] = ''
        if not groups[dest] then groups[dest] = {}; order[#order + 1] = dest end
        table.insert(groups[dest], encode(r))
        gone[#gone + 1] = m
        moved = moved + 1
      else
        skipped = skipped + 1
      end
    end
  end
  drop_many(gone)
end
local out = {moved, skipped}
for i, dest in ipairs(order) do
  local tid = ARGV[5] .. '-' .. i
  redis.call('HSET', K.obt, tid, dest)
  redis.call('HSET', K.obp, tid, encode(groups[dest]))
  out[#out + 1] = tid
  out[#out + 1] = dest
end
return out
"#;

/// Leases pending outbox transfers. ARGV: now, token, lease ms, max.
/// Returns {transfer id, target, payload}...
const OUTBOX_LEASE: &str = r#"
local now = tonumber(ARGV[1])
local out = {}
local n = 0
for _, t in ipairs(redis.call('HKEYS', K.obt)) do
  if n >= tonumber(ARGV[4]) then break end
  local l = redis.call('HGET', K.obl, t)
  local exp = l and tonumber(string.match(l, ':(%d+)$'))
  if not exp or exp <= now then
    redis.call('HSET', K.obl, t, ARGV[2] .. ':' .. num(now + tonumber(ARGV[3])))
    out[#out + 1] = t
    out[#out + 1] = redis.call('HGET', K.obt, t)
    out[#out + 1] = redis.call('HGET', K.obp, t) or ''
    n = n + 1
  end
end
return out
"#;

/// Applies a transfer to its target queue once. ARGV: now, transfer id, payload, channel,
/// event. Returns {appended (-1 if already applied), indexed}.
const OUTBOX_APPLY: &str = r#"
local now = tonumber(ARGV[1])
if redis.call('HEXISTS', K.xd, ARGV[2]) == 1 then
  return {-1, redis.call('HEXISTS', K.q, 'ix')}
end
local ix = ensure_queue(ARGV[1])
local items = {}
if ARGV[3] ~= '' then
  for _, rec in ipairs(decode(ARGV[3])) do
    local r = decode(rec)
    items[#items + 1] = {rec, num(r[4]), num(r[9]), #r[13]}
  end
end
append(items, now)
redis.call('HSET', K.xd, ARGV[2], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {#items, ix}
"#;

/// Removes an applied transfer from the outbox if this drainer still holds its lease.
/// ARGV: transfer id, token. Returns 1 removed, 0 lease lost.
const OUTBOX_DONE: &str = r#"
local l = redis.call('HGET', K.obl, ARGV[1])
if not l or string.sub(l, 1, #ARGV[2] + 1) ~= ARGV[2] .. ':' then return 0 end
redis.call('HDEL', K.obt, ARGV[1])
redis.call('HDEL', K.obp, ARGV[1])
redis.call('HDEL', K.obl, ARGV[1])
return 1
"#;

/// Background reclamation of one queue. ARGV: now, max entries, done-marker age (ms).
/// Returns {removed, pending transfers, queue exists}.
const SWEEP: &str = r#"
local now = tonumber(ARGV[1])
local removed = reap(now, tonumber(ARGV[2]))
local xd = redis.call('HGETALL', K.xd)
for i = 1, #xd, 2 do
  if tonumber(xd[i + 1]) < now - tonumber(ARGV[3]) then
    redis.call('HDEL', K.xd, xd[i])
    removed = removed + 1
  end
end
return {removed, redis.call('HLEN', K.obt), redis.call('EXISTS', K.q)}
"#;

/// ARGV: now. Returns the body bytes of the queue's unexpired messages: the total minus what
/// is filed under expiry seconds already past (only unreaped ones are left there).
const BYTES: &str = r#"
local total = tonumber(redis.call('GET', K.by) or '0') or 0
if total <= 0 then return '0' end
local past = redis.call('ZRANGEBYSCORE', K.bxs, '-inf', math.floor(tonumber(ARGV[1]) / 1000))
if #past > 0 then
  for _, v in ipairs(hmget(K.bx, past)) do total = total - (v and tonumber(v) or 0) end
end
if total < 0 then total = 0 end
return num(total)
"#;

/// Every script of the store, compiled once (their SHA1s are computed here).
pub(crate) struct Scripts {
    pub create_queue: Script,
    pub mark_indexed: Script,
    pub unmark_indexed: Script,
    pub replace_metadata: Script,
    pub delete_queue: Script,
    pub purge: Script,
    pub post: Script,
    pub list: Script,
    pub get: Script,
    pub delete_bulk: Script,
    pub delete_one: Script,
    pub pop: Script,
    pub stats: Script,
    pub claim: Script,
    pub get_claim: Script,
    pub renew: Script,
    pub release: Script,
    pub redrive: Script,
    pub outbox_lease: Script,
    pub outbox_apply: Script,
    pub outbox_done: Script,
    pub sweep: Script,
    pub bytes: Script,
    pub sub_create: Script,
    pub sub_list: Script,
    pub sub_get: Script,
    pub sub_update: Script,
    pub sub_delete: Script,
    pub sub_confirm: Script,
    pub sub_purge: Script,
    pub sub_sweep: Script,
    pub sub_forget: Script,
    pub notify_lease: Script,
    pub notify_renew: Script,
    pub notify_finish: Script,
    pub index_remove_if_old: Script,
}

fn s(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            create_queue: s(CREATE_QUEUE),
            mark_indexed: s(MARK_INDEXED),
            unmark_indexed: s(UNMARK_INDEXED),
            replace_metadata: s(REPLACE_METADATA),
            delete_queue: s(DELETE_QUEUE),
            purge: s(PURGE),
            post: s(POST),
            list: s(LIST),
            get: s(GET),
            delete_bulk: s(DELETE_BULK),
            delete_one: s(DELETE_ONE),
            pop: s(POP),
            stats: s(STATS),
            claim: s(CLAIM),
            get_claim: s(GET_CLAIM),
            renew: s(RENEW),
            release: s(RELEASE),
            redrive: s(REDRIVE),
            outbox_lease: s(OUTBOX_LEASE),
            outbox_apply: s(OUTBOX_APPLY),
            outbox_done: s(OUTBOX_DONE),
            sweep: s(SWEEP),
            bytes: s(BYTES),
            sub_create: s(SUB_CREATE),
            sub_list: s(SUB_LIST),
            sub_get: s(SUB_GET),
            sub_update: s(SUB_UPDATE),
            sub_delete: s(SUB_DELETE),
            sub_confirm: s(SUB_CONFIRM),
            sub_purge: s(SUB_PURGE),
            sub_sweep: s(SUB_SWEEP),
            sub_forget: s(SUB_FORGET),
            notify_lease: s(NOTIFY_LEASE),
            notify_renew: s(NOTIFY_RENEW),
            notify_finish: s(NOTIFY_FINISH),
            index_remove_if_old: Script::new(INDEX_REMOVE_IF_OLD),
        }
    }
}
