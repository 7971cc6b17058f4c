-- The management store (pooling): pools, flavors and the catalog of queue placements.
-- Version 3: independent of version 2; the runner applies every version not yet recorded.

CREATE TABLE IF NOT EXISTS zaqar_pools (
    name    TEXT PRIMARY KEY,
    uri     TEXT NOT NULL UNIQUE,
    weight  BIGINT NOT NULL,
    flavor  TEXT,
    options TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS zaqar_flavors (
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    capabilities TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (project, name)
);

-- A queue's pool; queue '' binds a whole project (per-project placement).
CREATE TABLE IF NOT EXISTS zaqar_catalog (
    project TEXT NOT NULL,
    queue   TEXT NOT NULL,
    pool    TEXT NOT NULL,
    PRIMARY KEY (project, queue)
);

CREATE INDEX IF NOT EXISTS zaqar_catalog_pool ON zaqar_catalog (pool);
