-- Per-project limits of the management store (`/v2/quotas`). NULL: not set here.

CREATE TABLE IF NOT EXISTS zaqar_quotas (
    project                VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    max_queues             BIGINT NULL,
    max_messages_per_queue BIGINT NULL,
    max_bytes              BIGINT NULL,
    requests_per_second    DOUBLE NULL,
    burst                  DOUBLE NULL
) ENGINE = InnoDB;
