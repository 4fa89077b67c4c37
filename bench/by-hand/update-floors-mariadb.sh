#!/bin/bash
# Floors of the UPDATE shape on MariaDB at 1M: each statement timed by the client, idle machine.
# Usage (a database loaded by `bench --sizes 1000000 --load-only`, idle machine): see BENCHMARKS.md, sixth session.
set -e
DB=${DB:-bf_bench_m1}; V=202611300001; B=${B:?a backfill build}
URL=mysql://root@127.0.0.1:3306/$DB
m() { mariadb -h127.0.0.1 -uroot $DB -e "$1"; }
t() { local s=$(date +%s.%N); mariadb -h127.0.0.1 -uroot $DB -e "$1" >/dev/null; echo "$2: $(echo "$(date +%s.%N) - $s" | bc)"; }
# the statement alone, inside a transaction rolled back after the clock stops
r() { echo "$2: $(mariadb -N -h127.0.0.1 -uroot $DB -e "START TRANSACTION; SET @s = NOW(6); $1; SELECT TIMESTAMPDIFF(MICROSECOND, @s, NOW(6)) / 1e6; ROLLBACK")"; }
purge() { sleep 25; }
ABOVE=$(mariadb -N -h127.0.0.1 -uroot $DB -e "SELECT COALESCE(MAX(id),0) FROM competency_versions")
echo "above=$ABOVE"
m "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) SELECT organization_id, id, name, 'stable', '2026-01-15 10:00:00', '2026-01-15 10:00:00' FROM competencies"
purge
OLD="HEX(CAST(t.effective_from AS BINARY))"
for run in 1 2; do
  t "UPDATE competency_versions SET effective_from = date(created_at) WHERE effective_from IS NULL" "reference UPDATE"
  purge
  t "UPDATE competency_versions SET effective_from = NULL WHERE id > $ABOVE" "reference restoring UPDATE"
  purge
  s=$(date +%s.%N); $B --database-url $URL --quiet apply $V; echo "backfill apply: $(echo "$(date +%s.%N) - $s" | bc)"
  purge
  J="(CASE WHEN JSON_TYPE(JSON_EXTRACT(u.old_values, '\$.\"effective_from\"')) <> 'NULL' THEN JSON_UNQUOTE(JSON_EXTRACT(u.old_values, '\$.\"effective_from\"')) END)"
  r "UPDATE competency_versions t JOIN backfill_undo u ON t.id = u.row_key SET t.effective_from = UNHEX($J) WHERE u.version = $V" "restore through the journal, no guard (rolled back)"
  purge
  r "DELETE FROM backfill_undo WHERE version = $V" "DELETE the entries (rolled back)"
  purge
  s=$(date +%s.%N); $B --database-url $URL --quiet revert $V; echo "backfill revert: $(echo "$(date +%s.%N) - $s" | bc)"
  purge
  # after the first apply: the ledger's journal exists
  r "INSERT INTO backfill_undo (version, run_id, table_name, key_column, row_key, old_values, new_values, value_format) SELECT 999, '01938f3c-0000-7000-8000-000000000000', 'competency_versions', 'id', t.id, JSON_OBJECT('effective_from', $OLD), JSON_OBJECT('effective_from', HEX(CAST(date(t.created_at) AS BINARY))), 'text' FROM competency_versions t WHERE t.id > $ABOVE" "journal INSERT of every row (rolled back)"
  purge
done
