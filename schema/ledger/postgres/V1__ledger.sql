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
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_run_id VARCHAR(36) NULL,
    last_error TEXT NULL
);

CREATE TABLE IF NOT EXISTS backfill_runs (
    run_id VARCHAR(36) NOT NULL PRIMARY KEY,
    version BIGINT NULL,
    action VARCHAR(16) NOT NULL,
    state VARCHAR(16) NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NULL,
    operator_name VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    tool_version VARCHAR(32) NOT NULL,
    checksum VARCHAR(64) NULL,
    arguments TEXT NOT NULL,
    plan_summary TEXT NULL,
    row_count BIGINT NOT NULL DEFAULT 0,
    outcome TEXT NULL,
    error_message TEXT NULL
);

CREATE INDEX IF NOT EXISTS backfill_runs_version_started ON backfill_runs (version, started_at);
