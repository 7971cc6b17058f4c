//! Lua scripts of claims: claim (with dead-lettering into the outbox), get, renew and release.

/// ARGV: now, claim id, ttl, grace, limit, dead-letter max claims (-1: none), dead-letter ttl
/// (-1: keep), transfer id, dead-letter queue, this queue's name.
/// Returns {moved count, {marker, record}...}.
pub(super) const CLAIM: &str = r#"
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
pub(super) const GET_CLAIM: &str = r#"
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
pub(super) const RENEW: &str = r#"
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
pub(super) const RELEASE: &str = r#"
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
