-- Zaqar message store, version 1: queues, messages and claims.
--
-- Applied by src/storage/postgres/schema.rs inside one transaction, in the schema chosen by
-- [drivers:message_store:postgresql] schema (or the connection's search_path). All times are
-- milliseconds since the Unix epoch as computed by the server's clock (never now() in SQL).

-- One row per queue. `last_marker` is the queue's message counter: a post bumps it with
-- UPDATE ... RETURNING in the transaction that inserts the messages, so markers are
-- consecutive per queue and become visible together with their batch.
CREATE TABLE queues (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project     TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    created     BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    metadata    TEXT NOT NULL,
    last_marker BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT queues_project_name_key UNIQUE (project, name)
);

-- Messages of a queue in marker (FIFO) order. The public id is 16 hex digits of the marker
-- followed by 16 hex digits of `suffix` (random), so ids of a deleted and re-created queue differ.
-- A claim is (claim_id, claim_expires); the claim is live while claim_expires > now. Released
-- or expired claims keep their id (pop shows it); never-claimed messages have claim_expires 0.
CREATE TABLE messages (
    queue_id      BIGINT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    marker        BIGINT NOT NULL,
    suffix        BIGINT NOT NULL,
    created       BIGINT NOT NULL,
    ttl           BIGINT NOT NULL,
    expires       BIGINT NOT NULL,
    delay_expires BIGINT NOT NULL,
    client_id     TEXT NOT NULL,
    claim_id      TEXT COLLATE "C",
    claim_expires BIGINT NOT NULL DEFAULT 0,
    claim_count   INTEGER NOT NULL DEFAULT 0,
    checksum      TEXT,
    encrypted     BOOLEAN NOT NULL DEFAULT FALSE,
    moved_from    TEXT COLLATE "C",
    body          TEXT NOT NULL,
    PRIMARY KEY (queue_id, marker)
) WITH (fillfactor = 90);

-- For the expired-data sweep only (reads filter on expires within a queue's marker range).
CREATE INDEX messages_expires_idx ON messages (expires);

-- Claims. `markers` lists the messages taken; a message still belongs to the claim only while
-- its own claim_id/claim_expires say so (it may have been deleted, released or re-claimed).
CREATE TABLE claims (
    queue_id BIGINT NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    id       TEXT COLLATE "C" NOT NULL,
    ttl      BIGINT NOT NULL,
    updated  BIGINT NOT NULL,
    expires  BIGINT NOT NULL,
    markers  BIGINT[] NOT NULL,
    PRIMARY KEY (queue_id, id)
);

CREATE INDEX claims_expires_idx ON claims (expires);

-- Queue tables churn: every message is inserted, updated by claims and deleted, and every post
-- rewrites its queue's row. Vacuum them early so claim scans do not wade through dead rows at
-- the head of busy queues.
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.01,
                          autovacuum_vacuum_insert_scale_factor = 0.05,
                          autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE claims SET (autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE queues SET (autovacuum_vacuum_scale_factor = 0.02);
