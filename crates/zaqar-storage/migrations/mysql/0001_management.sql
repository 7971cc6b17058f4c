-- The management store in MySQL / MariaDB (also Galera): pools, flavors, the catalog of queue
-- placements. Every statement is idempotent (IF NOT EXISTS): DDL is not transactional in MySQL
-- and nodes starting at once may both run it; nothing relies on table locks (Galera).
-- Names compare byte-wise (utf8mb4_bin), as the other stores order them.

CREATE TABLE IF NOT EXISTS zaqar_pools (
    name     VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    uri      TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    -- SHA-256 of the URI: its uniqueness (a TEXT column cannot carry a full unique index).
    uri_hash BINARY(32) NOT NULL,
    weight   BIGINT NOT NULL,
    flavor   VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    options  MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    UNIQUE KEY zaqar_pools_uri (uri_hash)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS zaqar_flavors (
    project      VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    name         VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    capabilities TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (project, name)
) ENGINE = InnoDB;

-- A queue's pool; queue '' binds a whole project (per-project placement).
CREATE TABLE IF NOT EXISTS zaqar_catalog (
    project VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    queue   VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    pool    VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (project, queue),
    KEY zaqar_catalog_pool (pool)
) ENGINE = InnoDB;
