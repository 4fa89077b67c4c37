-- How an undo entry holds its values: 'text', the dialect's exact text of each value (every digit,
-- microseconds and zone, blob bytes), or 'json', the driver values an older backfill wrote (restored
-- as before). Entries written from here on are 'text'.
ALTER TABLE backfill_undo ADD COLUMN value_format VARCHAR(8) NOT NULL DEFAULT 'json';
