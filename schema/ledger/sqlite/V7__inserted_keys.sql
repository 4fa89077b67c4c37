-- The keys an INSERT-shaped migration wrote into a table with no marker column (kit::inserted): one
-- row per inserted row, written in the batch's transaction, so a rolled-back batch records nothing and
-- a committed one exactly its rows. `group_key` is the row's group (e.g. its scenario) for
-- `revert --group`. Revert walks this table by `id`, deletes the rows it names and forgets them.
CREATE TABLE IF NOT EXISTS backfill_inserted (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version BIGINT NOT NULL,
    run_id VARCHAR(36) NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    row_key BIGINT NOT NULL,
    group_key BIGINT NULL,
    UNIQUE (version, table_name, row_key)
);
