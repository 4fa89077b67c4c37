-- The keys an INSERT-shaped migration wrote into a table with no marker column (kit::inserted): one
-- row per inserted row, written in the batch's transaction, so a rolled-back batch records nothing and
-- a committed one exactly its rows. `group_key` is the row's group (e.g. its scenario) for
-- `revert --group`. Revert walks this table by `id`, deletes the rows it names and forgets them.
-- utf8mb4_bin, as every ledger table since V6.
CREATE TABLE IF NOT EXISTS backfill_inserted (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    version BIGINT NOT NULL,
    run_id VARCHAR(36) NOT NULL,
    table_name VARCHAR(64) NOT NULL,
    row_key BIGINT NOT NULL,
    group_key BIGINT NULL,
    UNIQUE (version, table_name, row_key)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
