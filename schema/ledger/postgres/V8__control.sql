-- Steering a run from anywhere (ledger schema V8): `backfill pause|resume|cancel|set VERSION` write the
-- request columns of the run they aim at (`run_id`); the runner reads them between batches, one
-- primary-key read at most every second, and writes the live columns every few seconds for `status`.
-- Plain rows, no session state and no LISTEN, so it works through a transaction-pooling PgBouncer and
-- on Galera. A request names its run, so a later run never obeys a command meant for an earlier one.
-- Times are the server's clock in whole seconds since the Unix epoch, as in backfill_lease.
CREATE TABLE IF NOT EXISTS backfill_control (
    version BIGINT NOT NULL PRIMARY KEY,
    run_id VARCHAR(36) NOT NULL,
    action VARCHAR(16) NOT NULL,
    requested VARCHAR(16) NULL,
    batch_size BIGINT NULL,
    batch_ms BIGINT NULL,
    pause_ms BIGINT NULL,
    max_replica_lag BIGINT NULL,
    jobs BIGINT NULL,
    requested_by VARCHAR(255) NULL,
    requested_at BIGINT NULL,
    live_state VARCHAR(16) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    reported_at BIGINT NOT NULL,
    rows_done BIGINT NOT NULL DEFAULT 0,
    batches BIGINT NOT NULL DEFAULT 0,
    rows_per_second BIGINT NULL,
    eta_seconds BIGINT NULL,
    permille_done BIGINT NULL,
    rows_total BIGINT NULL,
    workers BIGINT NULL,
    chunks_done BIGINT NULL,
    chunks_total BIGINT NULL,
    throttle_reason TEXT NULL
);
