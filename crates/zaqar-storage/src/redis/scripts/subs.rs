//! Lua scripts of subscriptions and their notification batches, and the removal of stale
//! entries from a global index.

/// ARGV: now, subscriber URI, record (without id), random id part.
/// Returns {0 new | 1 existing unconfirmed | 2 existing confirmed, id}.
pub(super) const SUB_CREATE: &str = r#"
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
pub(super) const SUB_LIST: &str = r#"
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
pub(super) const SUB_GET: &str = r#"
local raw = redis.call('HGET', K.subs, ARGV[2])
if raw and decode(raw)[4] > tonumber(ARGV[1]) then return raw end
return false
"#;

/// ARGV: now, id, has subscriber, subscriber, has ttl, ttl, new expiry, has options, options.
/// Returns 0 updated, 1 not found, 2 subscriber taken by another live subscription.
pub(super) const SUB_UPDATE: &str = r#"
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
pub(super) const SUB_DELETE: &str = r#"
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
pub(super) const SUB_CONFIRM: &str = r#"
local raw = redis.call('HGET', K.subs, ARGV[2])
if not raw then return 0 end
local r = decode(raw)
if r[4] <= tonumber(ARGV[1]) then return 0 end
r[6] = tonumber(ARGV[3])
redis.call('HSET', K.subs, ARGV[2], encode(r))
return 1
"#;

/// Deletes every subscription of the source (the id counter stays: ids never repeat).
pub(super) const SUB_PURGE: &str = r#"
redis.call('DEL', K.subs, K.sids, K.suri)
return 1
"#;

/// Removes expired subscriptions. ARGV: now. Returns {removed, subscriptions left, batches}.
pub(super) const SUB_SWEEP: &str = r#"
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
pub(super) const SUB_FORGET: &str = r#"
if redis.call('EXISTS', K.subs) == 1 or redis.call('EXISTS', K.nq) == 1 then return 0 end
redis.call('DEL', K.sctr, K.nctr, K.nbm, K.nbs, K.nbl)
return 1
"#;

/// Leases the source's oldest free batches. ARGV: now, lease ms, most batches, scan budget.
/// Subscriptions deleted or expired since the post are dropped from a batch (a batch left with
/// none is removed). Returns {batches left in the source,
/// {{seq, {marker, record}..., {id, record, confirmed at posting}...}...}}.
pub(super) const NOTIFY_LEASE: &str = r#"
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
pub(super) const NOTIFY_RENEW: &str = r#"
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
pub(super) const NOTIFY_FINISH: &str = r#"
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
pub(super) const INDEX_REMOVE_IF_OLD: &str = r#"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;
