-- Zaqar message store, version 2: subscriptions and the notification outbox.
--
-- Subscriptions belong to (project, source), where the source is a queue name (topics are
-- queues of an internal project, see src/service/subscriptions.rs); they do not reference the
-- `queues` table, so deleting a queue leaves its subscriptions, as on every driver. Times are
-- milliseconds of the server's clock.

-- Public subscription ids are 16 hex digits of this sequence followed by 16 random hex digits,
-- so they sort in creation order (listing pages by id).
CREATE SEQUENCE subscription_seq;

-- A subscriber URI is unique within a source (expired rows included: creating or moving a
-- subscription onto the URI of an expired one deletes the expired row first, in the same
-- transaction). Expired rows are invisible to every statement and removed by the sweep.
CREATE TABLE subscriptions (
    project    TEXT COLLATE "C" NOT NULL,
    source     TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    subscriber TEXT NOT NULL,
    ttl        BIGINT NOT NULL,
    created    BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    options    TEXT NOT NULL,
    confirmed  BOOLEAN NOT NULL,
    secret     TEXT NOT NULL,
    delivered  BIGINT NOT NULL DEFAULT 0,
    failed     BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (project, source, id),
    CONSTRAINT subscriptions_subscriber_key UNIQUE (project, source, subscriber)
);

CREATE INDEX subscriptions_expires_idx ON subscriptions (expires);

-- The outbox of notifications: one row per post to a source that had unexpired subscriptions,
-- inserted by the statement that inserts the messages (so in the same transaction). It keeps
-- a copy of the posted messages (they may be deleted before delivery), the subscription ids
-- still to be served (`pending`, in creation order) and those of them that were unconfirmed at
-- posting time. A worker leases a row by setting `lease_until` (rows are picked with
-- FOR UPDATE SKIP LOCKED, so concurrent leasers on any node never take the same row); the row
-- is deleted when no subscriber is pending.
CREATE TABLE notifications (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project     TEXT COLLATE "C" NOT NULL,
    source      TEXT COLLATE "C" NOT NULL,
    markers     BIGINT[] NOT NULL,
    suffixes    BIGINT[] NOT NULL,
    ttls        BIGINT[] NOT NULL,
    delays      BIGINT[] NOT NULL,
    encrypted   BOOLEAN[] NOT NULL,
    bodies      TEXT[] NOT NULL,
    pending     TEXT[] NOT NULL,
    unconfirmed TEXT[] NOT NULL,
    lease_until BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX notifications_lease_idx ON notifications (lease_until, id);

ALTER TABLE notifications SET (autovacuum_vacuum_scale_factor = 0.02);
