#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, run as an unprivileged user.
#
#   eval "$(bash scripts/pg-test-cluster.sh start)"   # exports MUTTR_TEST_POSTGRES
#   bash scripts/pg-test-cluster.sh stop
#   bash scripts/pg-test-cluster.sh available         # exit 0 when PostgreSQL is installed
#   bash scripts/pg-test-cluster.sh down|up           # stop the server abruptly, start it again
#                                                     # (same data, same port: an outage)
#
# Uses the `initdb`/`pg_ctl` on PATH, else the newest /usr/lib/postgresql/*/bin (Debian's
# `postgresql` package; `.ci/run` installs it when missing). The cluster lives in a fresh
# directory under /tmp (MUTTR_PG_DIR to choose), trusts local connections, listens on
# 127.0.0.1 (MUTTR_PG_PORT, else the first free port from 55432) and on a socket in its
# directory, runs with fsync off (it is thrown away; MUTTR_PG_FSYNC=on for benchmarks), and is owned by the
# `postgres` user when run as root (PostgreSQL refuses to run as root), else by the caller.
set -euo pipefail
cmd=${1:-start}
state=${MUTTR_PG_STATE:-/tmp/muttr-pg-test.dir}

free_port() {
  local p
  for p in $(seq 55432 55531); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "pg-test-cluster: no free port in 55432-55531" >&2; exit 1
}

bin_dir() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] || { echo "pg-test-cluster: no initdb (install postgresql)" >&2; exit 2; }
  echo "$d"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  available)
    bin_dir >/dev/null 2>&1
    ;;
  start)
    bin=$(bin_dir)
    port=${MUTTR_PG_PORT:-$(free_port)}
    if [ -f "$state" ]; then
      bash "$0" stop >/dev/null 2>&1 || true
    fi
    dir=${MUTTR_PG_DIR:-$(mktemp -d /tmp/muttr-pg.XXXXXX)}
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      user=postgres; id "$user" >/dev/null 2>&1 || user=nobody
      chown "$user" "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U muttr --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${MUTTR_PG_FSYNC:-off} -c max_connections=300" start >/dev/null \
      || { cat "$dir/postgres.log" >&2; exit 1; }
    echo "$dir $port" >"$state"
    echo "export MUTTR_TEST_POSTGRES=postgres://muttr@127.0.0.1:$port/postgres"
    ;;
  down)
    read -r dir port <"$state"
    as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  up)
    read -r dir port <"$state"
    as_owner "$(bin_dir)/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${MUTTR_PG_FSYNC:-off} -c max_connections=300" start >/dev/null
    ;;
  stop)
    [ -f "$state" ] || exit 0
    read -r dir _ <"$state"
    bin=$(bin_dir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir" "$state"
    ;;
  *) echo "usage: $0 start|stop|available|down|up" >&2; exit 2 ;;
esac
