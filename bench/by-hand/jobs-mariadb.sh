#!/bin/bash
# apply/revert --jobs 2 on MariaDB 1M, both shapes, timed as processes; waits on locks sampled.
# Usage (a database loaded by `bench --sizes 1000000 --load-only`, idle machine): see BENCHMARKS.md, sixth session.
DB=${DB:-bf_bench_m1}; B=${B:?a backfill build}; URL=mysql://root@127.0.0.1:3306/$DB
echo "mode $(mariadb -N -h127.0.0.1 -uroot -e 'SELECT @@innodb_autoinc_lock_mode')"
sample() { # count sampled lock waits by lock mode while $1 runs
  while kill -0 $1 2>/dev/null; do
    mariadb -N -h127.0.0.1 -uroot -e "SELECT l.lock_mode, l.lock_table FROM information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_LOCKS l ON l.lock_id = w.requested_lock_id" 2>/dev/null
    sleep 0.05
  done | sort | uniq -c
}
timed() {
  local s=$(date +%s.%N)
  $B --database-url $URL --quiet "$@" > /tmp/autoinc-run.out 2>&1 &
  local pid=$!
  sample $pid
  wait $pid; local rc=$?
  echo "$*: $(echo "$(date +%s.%N) - $s" | bc) s (exit $rc)"
  sleep 20
}
ABOVE=${ABOVE:-99804}  # the last version id the load wrote (1M competencies, seed 42)
m() { mariadb -h127.0.0.1 -uroot $DB -e "$1"; }
m "DELETE FROM competency_versions WHERE id > $ABOVE"
m "INSERT INTO competency_versions (organization_id, competency_id, name, evolution_state, created_at, updated_at) SELECT organization_id, id, name, 'stable', '2026-01-15 10:00:00', '2026-01-15 10:00:00' FROM competencies"
sleep 20
for run in 1 2; do
  timed apply 202611300001 --jobs 2
  timed revert 202611300001 --jobs 2
done
m "DELETE FROM competency_versions WHERE id > $ABOVE"
sleep 20
for run in 1 2; do
  timed apply 202611230001 --jobs 2
  timed revert 202611230001 --jobs 2
done
