-- The runner lease: one row, taken with a conditional UPDATE in its own short transaction. It conflicts
-- through row locks on one server and through certification on a Galera cluster, so it holds through
-- poolers and on multi-writer clusters, where session advisory locks and GET_LOCK do not. Times are the
-- server's clock in whole seconds since the Unix epoch. IF NOT EXISTS / IGNORE: first runs may race.
CREATE TABLE IF NOT EXISTS backfill_lease (
    name VARCHAR(32) NOT NULL PRIMARY KEY,
    owner_id VARCHAR(36) NULL,
    host VARCHAR(255) NULL,
    pid BIGINT NULL,
    acquired_at BIGINT NULL,
    heartbeat_at BIGINT NULL,
    expires_at BIGINT NULL
);
INSERT INTO backfill_lease (name) VALUES ('runner') ON CONFLICT (name) DO NOTHING;
