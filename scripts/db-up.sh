#!/usr/bin/env bash
# Starts the local PostgreSQL and MariaDB the test suite talks to, if they are down, and waits until both
# accept connections. Safe to run any number of times.
set -euo pipefail

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "error: $name did not accept connections within 60s" >&2
  exit 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
fi
wait_for PostgreSQL psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1'

if ! mariadb-admin -h 127.0.0.1 -u root ping --silent >/dev/null 2>&1; then
  echo "starting MariaDB" >&2
  # --pidfile: another mariadbd (a test's own TLS server) must not count as this one running.
  start-stop-daemon --start --oknodo --background --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd
fi
wait_for MariaDB mariadb -h 127.0.0.1 -u root -e 'SELECT 1'
