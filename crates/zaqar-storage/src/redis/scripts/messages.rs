//! Lua scripts of messages: post, list, get, delete (bulk and single), pop and stats.

/// ARGV: now, channel, event, then per message: record, expires, delay expires, body bytes.
/// Returns {indexed, first marker}.
pub(super) const POST: &str = r#"
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

/// One chunk of a listing. ARGV: now, after (exclusive marker), want, include_claimed,
/// include_delayed, exclude client ('' for none), scan budget.
/// Returns {finished, last scanned marker, {marker, record}...}.
pub(super) const LIST: &str = r#"
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
pub(super) const GET: &str = r#"
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
pub(super) const DELETE_BULK: &str = r#"
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
pub(super) const DELETE_ONE: &str = r#"
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
pub(super) const POP: &str = r#"
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
pub(super) const STATS: &str = r#"
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
