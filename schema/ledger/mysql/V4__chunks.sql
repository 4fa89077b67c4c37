-- Parallel runs (`apply`/`revert --jobs N`): the key ranges (chunks) of one migration's apply or
-- revert, each with its own checkpoint. A worker takes a pending chunk with a compare-and-set, and every
-- batch in it is fenced on the chunk row (owning run and cursor) and commits its writes with the
-- chunk's checkpoint, so the workers never share a hot row. `cursor_key` is the last key done in the
-- chunk (NULL: none yet); `row_count`/`batches` are the chunk's totals, `owner_rows` what its current
-- owner run wrote (folded into that run's audit row when the run ends or is taken over). The rows are
-- folded into backfill_migrations and deleted when the run completes.
CREATE TABLE IF NOT EXISTS backfill_chunks (
    version BIGINT NOT NULL,
    action VARCHAR(16) NOT NULL,
    chunk_no INTEGER NOT NULL,
    lo_key BIGINT NOT NULL,
    hi_key BIGINT NOT NULL,
    cursor_key BIGINT NULL,
    state VARCHAR(16) NOT NULL,
    owner_run VARCHAR(36) NOT NULL,
    row_count BIGINT NOT NULL DEFAULT 0,
    owner_rows BIGINT NOT NULL DEFAULT 0,
    batches BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (version, action, chunk_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
