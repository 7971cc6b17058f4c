-- Per-project quotas, version 4: byte accounting of the message store and the per-project
-- limits of the management store. Independent of the versions after 3.

-- Body bytes of each queue's message rows (expired-but-unswept ones included), kept by the
-- triggers below in the transaction that inserts or deletes the rows, so they never drift.
-- A queue's bytes are the sum over its slots: a statement adds to the slot of its connection
-- (pg_backend_pid() % 16), so concurrent posts and deletes of one queue through different
-- connections do not wait for each other on one counter row. A slot may go negative.
CREATE TABLE queue_bytes (
    queue_id BIGINT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    slot     SMALLINT NOT NULL,
    bytes    BIGINT NOT NULL,
    PRIMARY KEY (queue_id, slot)
);

-- Statement-level: one upsert per queue per statement, in queue order (statements that touch
-- several queues, like the sweep and moves, lock the counters in the same order).
CREATE FUNCTION zaqar_bytes_inserted() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO queue_bytes AS b (queue_id, slot, bytes)
    SELECT n.queue_id, (pg_backend_pid() % 16)::smallint, sum(octet_length(n.body))
    FROM new_rows n
    GROUP BY n.queue_id
    ORDER BY n.queue_id
    ON CONFLICT (queue_id, slot) DO UPDATE SET bytes = b.bytes + EXCLUDED.bytes;
    RETURN NULL;
END
$$;

-- Rows deleted with their queue (ON DELETE CASCADE) are skipped: the queue's counters go with it.
CREATE FUNCTION zaqar_bytes_deleted() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO queue_bytes AS b (queue_id, slot, bytes)
    SELECT o.queue_id, (pg_backend_pid() % 16)::smallint, -sum(octet_length(o.body))
    FROM old_rows o
    WHERE EXISTS (SELECT 1 FROM queues q WHERE q.id = o.queue_id)
    GROUP BY o.queue_id
    ORDER BY o.queue_id
    ON CONFLICT (queue_id, slot) DO UPDATE SET bytes = b.bytes + EXCLUDED.bytes;
    RETURN NULL;
END
$$;

-- Creating the triggers locks `messages` against writes until this migration commits, so the
-- count below sees every row and no row escapes both it and the triggers.
CREATE TRIGGER messages_bytes_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION zaqar_bytes_inserted();
CREATE TRIGGER messages_bytes_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION zaqar_bytes_deleted();

INSERT INTO queue_bytes (queue_id, slot, bytes)
SELECT queue_id, 0, sum(octet_length(body)) FROM messages GROUP BY queue_id;

-- Per-project limits set through /v2/quotas (management store). NULL: not set here (the
-- overrides file or [quotas] decides); 0: unlimited.
CREATE TABLE IF NOT EXISTS zaqar_quotas (
    project                TEXT COLLATE "C" PRIMARY KEY,
    max_queues             BIGINT,
    max_messages_per_queue BIGINT,
    max_bytes              BIGINT,
    requests_per_second    DOUBLE PRECISION,
    burst                  DOUBLE PRECISION
);
