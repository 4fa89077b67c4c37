-- backfill's own tables. IF NOT EXISTS everywhere: MySQL DDL is not transactional, so a runner killed
-- half-way through this file must not stop the next one.
-- backfill's own tables. One row per data migration ever started, and an append-only audit of runs.
CREATE TABLE IF NOT EXISTS backfill_migrations (
    version BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL,
    last_action VARCHAR(16) NOT NULL,
    apply_cursor TEXT NULL,
    revert_cursor TEXT NULL,
    revert_scenario BIGINT NULL,
    batch_size BIGINT NULL,
    rows_applied BIGINT NOT NULL DEFAULT 0,
    rows_reverted BIGINT NOT NULL DEFAULT 0,
    batches BIGINT NOT NULL DEFAULT 0,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    updated_at DATETIME(6) NOT NULL,
    last_run_id VARCHAR(36) NULL,
    last_error TEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS backfill_runs (
    run_id VARCHAR(36) NOT NULL PRIMARY KEY,
    version BIGINT NULL,
    action VARCHAR(16) NOT NULL,
    state VARCHAR(16) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NULL,
    operator_name VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    tool_version VARCHAR(32) NOT NULL,
    checksum VARCHAR(64) NULL,
    arguments TEXT NOT NULL,
    plan_summary TEXT NULL,
    row_count BIGINT NOT NULL DEFAULT 0,
    outcome TEXT NULL,
    error_message TEXT NULL,
    INDEX backfill_runs_version_started (version, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

