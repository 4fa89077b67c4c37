-- Every ledger table in utf8mb4 with binary comparison, whatever the server's or the database's default
-- character set. V1-V5 named the character set on some tables only: on a server with
-- character_set_server=latin1 the lease, the undo journal and refinery's history came out latin1, and
-- the journal could not hold the old value of a row with text outside Latin-1. utf8mb4_bin: run ids,
-- states, table names and the journal's values compare byte for byte, never case- or
-- accent-insensitively. A ledger table added later names both too. Idempotent: a runner killed
-- half-way (MySQL DDL is not transactional) converts what is left on its next run.
ALTER TABLE backfill_migrations CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE backfill_runs CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE backfill_lease CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE backfill_undo CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE backfill_chunks CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE backfill_schema_history CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
