//! Lua scripts of the queue's life: creation, metadata, the index flag, deletion, purge, the
//! background sweep and the byte count.

/// ARGV: now, created-metadata JSON. Returns {created, indexed}.
pub(super) const CREATE_QUEUE: &str = r#"
if redis.call('EXISTS', K.q) == 1 then
  return {0, redis.call('HEXISTS', K.q, 'ix')}
end
redis.call('HSET', K.q, 'c', ARGV[1], 'v', '1', 'md', ARGV[2])
return {1, 0}
"#;

/// Marks the queue as present in its project index. Returns whether the queue exists.
pub(super) const MARK_INDEXED: &str = r#"
if redis.call('EXISTS', K.q) == 0 then return 0 end
redis.call('HSET', K.q, 'ix', '1')
return 1
"#;

/// ARGV: expected version, metadata JSON. Returns -1 missing, 0 stale, 1 replaced.
pub(super) const REPLACE_METADATA: &str = r#"
local v = redis.call('HGET', K.q, 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', K.q, 'v', num(tonumber(v) + 1), 'md', ARGV[2])
return 1
"#;

/// First step of a queue deletion: the queue stops counting as indexed, so a crash before the
/// deletion completes lets the next write re-index it.
pub(super) const UNMARK_INDEXED: &str = r#"
redis.call('HDEL', K.q, 'ix')
return 1
"#;

/// Deletes the queue with its messages and claims, unless moves out of it are still pending
/// (returns 0; the caller drains them and retries).
pub(super) const DELETE_QUEUE: &str = r#"
if redis.call('HLEN', K.obt) > 0 then return 0 end
purge()
redis.call('DEL', K.q, K.ctr, K.obl)
return 1
"#;

pub(super) const PURGE: &str = r#"
purge()
return 1
"#;

/// Background reclamation of one queue. ARGV: now, max entries, done-marker age (ms).
/// Returns {removed, pending transfers, queue exists}.
pub(super) const SWEEP: &str = r#"
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
pub(super) const BYTES: &str = r#"
local total = tonumber(redis.call('GET', K.by) or '0') or 0
if total <= 0 then return '0' end
local past = redis.call('ZRANGEBYSCORE', K.bxs, '-inf', math.floor(tonumber(ARGV[1]) / 1000))
if #past > 0 then
  for _, v in ipairs(hmget(K.bx, past)) do total = total - (v and tonumber(v) or 0) end
end
if total < 0 then total = 0 end
return num(total)
"#;
