//! The SQL statements of the PostgreSQL store (schema: `migrations/postgresql/`).
//!
//! Parameters `$1` and `$2` are always the project and the queue name; the queue's id is looked
//! up inside the statement, so every statement is scoped by project. Times (`$3`, ...) are the
//! driver clock's milliseconds: no statement calls `now()`.

pub(super) const SQL_POST: &str = "
WITH q AS (
    INSERT INTO queues AS t (project, name, created, version, metadata, last_marker)
    VALUES ($1, $2, $3, 1, '{}', $4)
    ON CONFLICT (project, name) DO UPDATE SET last_marker = t.last_marker + EXCLUDED.last_marker
    RETURNING id, last_marker
),
ins AS (
INSERT INTO messages (queue_id, marker, suffix, created, ttl, expires, delay_expires, client_id,
                      checksum, encrypted, body)
SELECT q.id, q.last_marker - $4 + v.ord, v.suffix, $3, v.ttl, $3 + v.ttl * 1000,
       $3 + v.delay * 1000, v.client_id, v.checksum, v.encrypted, v.body
FROM q, unnest($5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], $10::bool[],
               $11::text[]) WITH ORDINALITY AS v(suffix, ttl, delay, client_id, checksum,
                                                  encrypted, body, ord)
RETURNING marker, suffix, ttl, delay_expires, encrypted, body
),
s AS (
    SELECT id, confirmed FROM subscriptions
    WHERE project = $1 AND source = $2 AND expires > $3
),
nb AS (
    INSERT INTO notifications (project, source, markers, suffixes, ttls, delays, encrypted,
                               bodies, pending, unconfirmed)
    SELECT $1, $2, array_agg(i.marker ORDER BY i.marker), array_agg(i.suffix ORDER BY i.marker),
           array_agg(i.ttl ORDER BY i.marker),
           array_agg((i.delay_expires - $3) / 1000 ORDER BY i.marker),
           array_agg(i.encrypted ORDER BY i.marker), array_agg(i.body ORDER BY i.marker),
           (SELECT array_agg(id ORDER BY id) FROM s),
           (SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE NOT confirmed), '{}') FROM s)
    FROM ins i
    CROSS JOIN q
    JOIN unnest($12::int4[]) WITH ORDINALITY AS g(post, ord)
      ON g.ord = i.marker - (q.last_marker - $4)
    WHERE EXISTS (SELECT 1 FROM s)
    GROUP BY g.post
    ORDER BY g.post
)
SELECT marker, suffix FROM ins";

pub(super) const SQL_LIST: &str = "
SELECT * FROM messages
WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND marker > $3 AND expires > $4
  AND ($5 OR claim_expires <= $4)
  AND ($6 OR delay_expires <= $4)
  AND ($7::text IS NULL OR client_id <> $7)
ORDER BY marker
LIMIT $8";

pub(super) const SQL_GET: &str = "
SELECT m.* FROM unnest($3::int8[], $4::int8[]) AS k(marker, suffix)
JOIN messages m ON m.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
               AND m.marker = k.marker AND m.suffix = k.suffix
WHERE m.expires > $5";

pub(super) const SQL_DELETE_IDS: &str = "
DELETE FROM messages m USING unnest($3::int8[], $4::int8[]) AS k(marker, suffix)
WHERE m.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND m.marker = k.marker AND m.suffix = k.suffix";

pub(super) const SQL_LOCK_IDS: &str = "
SELECT m.queue_id, m.marker, m.suffix, m.claim_id, m.claim_expires
FROM unnest($3::int8[], $4::int8[]) AS k(marker, suffix)
JOIN messages m ON m.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
               AND m.marker = k.marker AND m.suffix = k.suffix
WHERE m.expires > $5
ORDER BY m.marker
FOR UPDATE OF m";

pub(super) const SQL_DELETE_MARKERS: &str =
    "DELETE FROM messages WHERE queue_id = $1 AND marker = ANY($2)";

pub(super) const SQL_POP: &str = "
WITH picked AS (
    SELECT queue_id, marker FROM messages
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
      AND expires > $3 AND claim_expires <= $3 AND delay_expires <= $3
    ORDER BY marker
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
DELETE FROM messages m USING picked
WHERE m.queue_id = picked.queue_id AND m.marker = picked.marker
RETURNING m.*";

/// Single deletes of one queue, combined: deletes each listed message (marker `$3`, suffix `$4`)
/// only when `decide_single_delete` would answer `Ok(true)` without asking anything else: no
/// claim id (`$5` null) and the message is not claimed, or the message is held by the given
/// live claim. The others are decided one by one with `SQL_DELETE_ONE_CHECK`. Returns the
/// markers deleted.
pub(super) const SQL_DELETE_BATCH: &str = "
DELETE FROM messages m
USING unnest($3::int8[], $4::int8[], $5::text[]) AS k(marker, suffix, claim_id)
WHERE m.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND m.marker = k.marker AND m.suffix = k.suffix AND m.expires > $6
  AND ((k.claim_id IS NULL AND m.claim_expires <= $6)
       OR (k.claim_id IS NOT NULL AND m.claim_id = k.claim_id AND m.claim_expires > $6))
RETURNING m.marker";

pub(super) const SQL_DELETE_ONE_CHECK: &str = "
SELECT m.queue_id, m.claim_id, m.claim_expires,
       EXISTS (SELECT 1 FROM claims c
               WHERE c.queue_id = m.queue_id AND c.id = $6 AND c.expires > $5) AS claim_live
FROM messages m
WHERE m.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND m.marker = $3 AND m.suffix = $4 AND m.expires > $5
FOR UPDATE OF m";

pub(super) const SQL_STATS: &str = "
WITH s AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE claim_expires > $3) AS claimed,
           count(*) FILTER (WHERE delay_expires > $3) AS delayed,
           min(marker) AS lo, max(marker) AS hi, min(queue_id) AS qid
    FROM messages
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2) AND expires > $3
)
SELECT s.total, s.claimed, s.delayed,
       o.marker AS o_marker, o.suffix AS o_suffix, o.created AS o_created,
       n.marker AS n_marker, n.suffix AS n_suffix, n.created AS n_created
FROM s
LEFT JOIN messages o ON o.queue_id = s.qid AND o.marker = s.lo
LEFT JOIN messages n ON n.queue_id = s.qid AND n.marker = s.hi";

pub(super) const SQL_PURGE: &str = "
WITH q AS (SELECT id FROM queues WHERE project = $1 AND name = $2),
     gone AS (DELETE FROM messages WHERE queue_id = (SELECT id FROM q))
DELETE FROM claims WHERE queue_id = (SELECT id FROM q)";

/// Moves messages `$2` of queue `$1` to the end of queue `$4` of project `$3` (created if
/// missing), unclaimed with a fresh claim count, `moved_from = $7`, and the TTL `$6` from now
/// (`$5`) when given, else their own ttl and expiry. `$8` are the new random id suffixes.
pub(super) const SQL_MOVE: &str = "
WITH src AS (
    DELETE FROM messages WHERE queue_id = $1 AND marker = ANY($2::int8[]) RETURNING *
),
s AS (SELECT src.*, row_number() OVER (ORDER BY src.marker) AS ord FROM src),
n AS (SELECT count(*) AS n FROM src),
tq AS (
    INSERT INTO queues AS t (project, name, created, version, metadata, last_marker)
    SELECT $3, $4, $5, 1, '{}', n.n FROM n WHERE n.n > 0
    ON CONFLICT (project, name) DO UPDATE SET last_marker = t.last_marker + EXCLUDED.last_marker
    RETURNING id, last_marker
),
ins AS (
    INSERT INTO messages (queue_id, marker, suffix, created, ttl, expires, delay_expires,
                          client_id, claim_id, claim_expires, claim_count, checksum, encrypted,
                          moved_from, body)
    SELECT tq.id, tq.last_marker - n.n + s.ord, r.suffix, s.created,
           COALESCE($6::int8, s.ttl),
           CASE WHEN $6::int8 IS NULL THEN s.expires ELSE $5 + $6::int8 * 1000 END,
           s.delay_expires, s.client_id, NULL, 0, 0, s.checksum, s.encrypted, $7::text, s.body
    FROM tq, n, s JOIN unnest($8::int8[]) WITH ORDINALITY AS r(suffix, ord) ON r.ord = s.ord
    RETURNING 1
)
SELECT count(*) AS moved FROM ins";

/// Claims the picked messages (CTE `picked` is prepended) and records the claim. The lifetime
/// extension is `storage::extend_for_claim` in SQL: a message that would expire before
/// the claim (`$6`) lives until the claim's expiry plus the grace `$8`, with ttl = ttl + grace.
macro_rules! claim_tail {
    () => {
        "
upd AS (
    UPDATE messages m
    SET claim_id = $5, claim_expires = $6, claim_count = m.claim_count + 1,
        ttl = CASE WHEN m.expires < $6 THEN $7 + $8 ELSE m.ttl END,
        expires = CASE WHEN m.expires < $6 THEN $6 + $8 * 1000 ELSE m.expires END
    FROM picked
    WHERE m.queue_id = picked.queue_id AND m.marker = picked.marker
    RETURNING m.*
),
ins AS (
    INSERT INTO claims (queue_id, id, ttl, updated, expires, markers)
    SELECT min(queue_id), $5, $7, $3, $6, array_agg(marker ORDER BY marker)
    FROM upd HAVING count(*) > 0
)
SELECT * FROM upd ORDER BY marker"
    };
}

pub(super) const SQL_CLAIM: &str = concat!(
    "
WITH picked AS (
    SELECT queue_id, marker FROM messages
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
      AND expires > $3 AND claim_expires <= $3 AND delay_expires <= $3
    ORDER BY marker
    LIMIT $4
    FOR UPDATE SKIP LOCKED
),",
    claim_tail!()
);

/// Same as [`SQL_CLAIM`] for messages already selected and locked by this transaction: `$4`
/// are their markers.
pub(super) const SQL_CLAIM_MARKERS: &str = concat!(
    "
WITH picked AS (
    SELECT queue_id, marker FROM messages
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
      AND marker = ANY($4::int8[])
),",
    claim_tail!()
);

/// The candidates of a dead-letter claim, locked.
pub(super) const SQL_PICK: &str = "
SELECT queue_id, marker, claim_count FROM messages
WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND expires > $3 AND claim_expires <= $3 AND delay_expires <= $3
ORDER BY marker
LIMIT $4
FOR UPDATE SKIP LOCKED";

/// The candidates of a redrive (unclaimed; delayed ones included), locked.
pub(super) const SQL_PICK_REDRIVE: &str = "
SELECT queue_id, marker, moved_from FROM messages
WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND expires > $3 AND claim_expires <= $3
ORDER BY marker
FOR UPDATE SKIP LOCKED";

pub(super) const SQL_GET_CLAIM: &str = "
SELECT c.ttl AS c_ttl, c.updated AS c_updated, c.expires AS c_expires, m.*
FROM claims c
LEFT JOIN messages m
       ON m.queue_id = c.queue_id AND m.marker = ANY(c.markers) AND m.claim_id = c.id
      AND m.claim_expires > $4 AND m.expires > $4
WHERE c.queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
  AND c.id = $3 AND c.expires > $4
ORDER BY m.marker";

/// Renews a live claim and the messages it still holds (lifetime extension as in
/// `claim_tail!`, with the new ttl `$4` and grace `$7`).
pub(super) const SQL_RENEW: &str = "
WITH c AS (
    UPDATE claims SET ttl = $4, updated = $5, expires = $6
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2)
      AND id = $3 AND expires > $5
    RETURNING queue_id, markers
),
held AS (
    UPDATE messages m
    SET claim_expires = $6,
        ttl = CASE WHEN m.expires < $6 THEN $4 + $7 ELSE m.ttl END,
        expires = CASE WHEN m.expires < $6 THEN $6 + $7 * 1000 ELSE m.expires END
    FROM c
    WHERE m.queue_id = c.queue_id AND m.marker = ANY(c.markers) AND m.claim_id = $3
      AND m.claim_expires > $5 AND m.expires > $5
)
SELECT count(*) AS renewed FROM c";

/// Deletes the claim and ends the lease of the messages it still holds (they keep the claim
/// id, which pop shows).
pub(super) const SQL_RELEASE: &str = "
WITH c AS (
    DELETE FROM claims
    WHERE queue_id = (SELECT id FROM queues WHERE project = $1 AND name = $2) AND id = $3
    RETURNING queue_id, markers
)
UPDATE messages m SET claim_expires = $4
FROM c
WHERE m.queue_id = c.queue_id AND m.marker = ANY(c.markers) AND m.claim_id = $3
  AND m.claim_expires > $4";

pub(super) const SQL_SWEEP_MESSAGES: &str = "
WITH doomed AS (
    SELECT queue_id, marker FROM messages WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
DELETE FROM messages m USING doomed
WHERE m.queue_id = doomed.queue_id AND m.marker = doomed.marker";

pub(super) const SQL_SWEEP_CLAIMS: &str = "
WITH doomed AS (
    SELECT queue_id, id FROM claims WHERE expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)
DELETE FROM claims c USING doomed
WHERE c.queue_id = doomed.queue_id AND c.id = doomed.id";

pub(super) const SQL_SWEEP_SUBSCRIPTIONS: &str = "
WITH doomed AS (
    SELECT project, source, id FROM subscriptions WHERE expires <= $1 LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM subscriptions s USING doomed
WHERE s.project = doomed.project AND s.source = doomed.source AND s.id = doomed.id";

/// Unexpired body bytes of project `$1` at `$2`: its queues' counters (every row) minus its
/// expired rows not swept yet (found through `messages_expires_idx`).
pub(super) const SQL_PROJECT_BYTES: &str = "
SELECT (
    (SELECT coalesce(sum(b.bytes), 0) FROM queue_bytes b
     WHERE b.queue_id IN (SELECT id FROM queues WHERE project = $1))
  - (SELECT coalesce(sum(octet_length(m.body)), 0) FROM messages m
     WHERE m.expires <= $2 AND m.queue_id IN (SELECT id FROM queues WHERE project = $1))
)::int8";
