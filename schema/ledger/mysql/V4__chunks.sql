-- Parallel runs (`apply`/`revert --jobs N`): the key ranges (chunks) of one migration's apply or
-- revert, each with its own checkpoint; a chunk is named by its first key (chunks never overlap). A
-- worker takes a pending chunk with a compare-and-set, or splits the upper half off a busy one, and
-- every batch is fenced on its chunk row (owning run and cursor) and commits its writes with the
-- chunk's checkpoint, so the workers never share a hot row. `cursor_key` is the last key done in the
-- chunk (NULL: none yet); `row_count`/`batches` are the chunk's totals, `owner_rows` what its current
-- owner run wrote (moved to that run's audit row when the run ends or is taken over). The chunks are
-- folded into backfill_migrations and deleted when the run completes.
CREATE TABLE IF NOT EXISTS backfill_chunks (
    version BIGINT NOT NULL,
    action VARCHAR(16) NOT NULL,
    lo_key BIGINT NOT NULL,
    hi_key BIGINT NOT NULL,
    cursor_key BIGINT NULL,
    state VARCHAR(16) NOT NULL,
    owner_run VARCHAR(36) NOT NULL,
    row_count BIGINT NOT NULL DEFAULT 0,
    owner_rows BIGINT NOT NULL DEFAULT 0,
    batches BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (version, action, lo_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
