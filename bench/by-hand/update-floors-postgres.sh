#!/bin/bash
# PostgreSQL at 1M: the UPDATE shape's floors, and the apply before/after 'RETURNING old.o' (alternating).
# Usage (a database loaded by `bench --sizes 1000000 --load-only`, idle machine): see BENCHMARKS.md, sixth session.
set -e
DB=${DB:-bf_bench_p1}; V=202611300001; OLD=${OLD:?the before build}; NEW=${NEW:?the after build}
URL=postgres://postgres@127.0.0.1:5432/$DB
p() { psql -qAt -h 127.0.0.1 -U postgres $DB -c "$1"; }
settle() { p "VACUUM (ANALYZE) competency_versions"; p "VACUUM (ANALYZE) backfill_undo"; p "CHECKPOINT"; }
t() {
  local end=COMMIT; [ "$3" = rollback ] && end=ROLLBACK
  local ms=$(printf '\\timing on\nBEGIN;\n%s;\n%s;\n' "$1" "$end" | psql -qAt -h 127.0.0.1 -U postgres $DB | grep '^Time:' | sed -n 2p | awk '{print $2}')
  echo "$2: $ms ms"
}
run() { local b=$1; shift; local s=$(date +%s.%N); $b --database-url $URL --quiet "$@" > /dev/null; echo "$(basename $(dirname $b)) $*: $(echo "$(date +%s.%N) - $s" | bc) s"; }
ABOVE=${ABOVE:-99804}  # the last version id the load wrote (1M competencies, seed 42)
p "DELETE FROM competency_versions WHERE id > $ABOVE"
settle
p "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) SELECT organization_id, id, name, 'stable', '2026-01-15 10:00:00', '2026-01-15 10:00:00' FROM competencies"
p "CHECKPOINT"
echo "statistics from before the rows were written:"
run $NEW apply $V
settle
run $NEW revert $V
settle
for r in 1 2; do
  t "UPDATE competency_versions SET effective_from = date(created_at) WHERE effective_from IS NULL" "reference UPDATE"
  settle
  t "UPDATE competency_versions SET effective_from = NULL WHERE id > $ABOVE" "reference restoring UPDATE"
  settle
  t "INSERT INTO backfill_undo (version, run_id, table_name, key_column, row_key, old_values, new_values, value_format) SELECT 999, '01938f3c-0000-7000-8000-000000000000', 'competency_versions', 'id', t.id, CAST(json_build_object('effective_from', CAST(t.effective_from AS TEXT)) AS TEXT), CAST(json_build_object('effective_from', CAST(date(t.created_at) AS TEXT)) AS TEXT), 'text' FROM competency_versions t WHERE t.id > $ABOVE" "journal INSERT of every row (rolled back)" rollback
  settle
  for b in $OLD $NEW; do
    [ $r = 2 ] && b=$([ $b = $OLD ] && echo $NEW || echo $OLD)
    run $b apply $V
    settle
    if [ $b = $NEW ]; then
      t "UPDATE competency_versions AS t SET effective_from = CAST(CAST(u.old_values AS json) ->> 'effective_from' AS date) FROM backfill_undo u WHERE t.id = u.row_key AND u.version = $V" "restore through the journal, no guard (rolled back)" rollback
      settle
      t "DELETE FROM backfill_undo WHERE version = $V" "DELETE the entries (rolled back)" rollback
      settle
    fi
    run $b revert $V
    settle
  done
done
