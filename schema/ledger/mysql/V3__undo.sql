-- The undo journal of UPDATE-shaped migrations: one row per changed row and migration, written in the
-- batch's transaction, holding the row's values before the migration's first change and after its
-- last. Revert restores the old values; `backfill forget VERSION` drops a final migration's entries.
-- Bounded by the rows a migration changed: a top-up updates an entry, never adds a second one.
CREATE TABLE IF NOT EXISTS backfill_undo (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    version BIGINT NOT NULL,
    run_id VARCHAR(36) NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    key_column VARCHAR(64) NOT NULL,
    row_key BIGINT NOT NULL,
    old_values TEXT NOT NULL,
    new_values TEXT NOT NULL,
    UNIQUE (version, table_name, row_key)
);
