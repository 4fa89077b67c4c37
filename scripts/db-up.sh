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

# The topology tests (tests/topology.rs) start their own PgBouncer, 3-node Galera cluster and HAProxy in
# front of it, and tests/metrics.rs a Prometheus: install what they need from Debian's packages when it is missing (apt-get update once, and only then).
missing=()
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
# tests/metrics.rs scrapes `--metrics-addr` with a Prometheus server of its own.
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq >/dev/null
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a pgbouncer service on 127.0.0.1:6432 when it is installed; the tests run their own.
  if command -v pgbouncer >/dev/null 2>&1 && [ -e /etc/init.d/pgbouncer ]; then
    /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
  fi
  # The same for Prometheus on :9090.
  if [ -e /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi

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
