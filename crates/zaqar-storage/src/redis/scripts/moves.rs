//! Lua scripts of moves between queues: redrive into the outbox, and the outbox's lease, apply
//! (once, with a done-marker in the target) and removal.

/// ARGV: now, limit (-1: all), target ('' : each message's source), this queue's name,
/// transfer id base. Moves messages into the outbox, one transfer per target.
/// Returns {moved, skipped, {transfer id, target}...}.
pub(super) const REDRIVE: &str = r#"
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
pub(super) const OUTBOX_LEASE: &str = r#"
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
pub(super) const OUTBOX_APPLY: &str = r#"
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
pub(super) const OUTBOX_DONE: &str = r#"
local l = redis.call('HGET', K.obl, ARGV[1])
if not l or string.sub(l, 1, #ARGV[2] + 1) ~= ARGV[2] .. ':' then return 0 end
redis.call('HDEL', K.obt, ARGV[1])
redis.call('HDEL', K.obp, ARGV[1])
redis.call('HDEL', K.obl, ARGV[1])
return 1
"#;
