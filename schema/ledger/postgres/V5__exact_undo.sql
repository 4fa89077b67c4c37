-- How an undo entry holds its values: 'text', the dialect's exact text of each value (every digit,
-- microseconds and zone, blob bytes), or 'json', the driver values an older backfill wrote (restored
-- as before). Entries written from here on are 'text'.
-- IF NOT EXISTS: first runs race to create the ledger, and MariaDB commits DDL on its own, so a runner
-- killed between this statement and refinery's history row leaves the column without the row; the
-- next runner must find the step harmless to repeat (MariaDB and PostgreSQL; MySQL 8 lacks the clause).
ALTER TABLE backfill_undo ADD COLUMN IF NOT EXISTS value_format VARCHAR(8) NOT NULL DEFAULT 'json';
