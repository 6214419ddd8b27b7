#!/usr/bin/env bash
# Services for the benchmarks: installs PostgreSQL, Redis and wrk from Debian packages, then
# starts a private PostgreSQL and a private Redis on 127.0.0.1 with their data under a
# bench-owned directory. Nothing system-wide is configured or started; the packages' own
# services are left alone.
#
#   bench/setup.sh [start]   install what is missing (apt-get), start both (idempotent)
#   bench/setup.sh stop      stop both (the data stays; `clean` removes it)
#   bench/setup.sh status    say what runs; exit 1 when something is down
#   bench/setup.sh clean     stop both and remove the state directory
#
# Environment (defaults):
#   ALLOTMENT_BENCH_STATE=/tmp/allotment-bench   data, sockets and logs
#   ALLOTMENT_BENCH_PG_PORT=55432                PostgreSQL, user allotment_bench, trust auth
#   ALLOTMENT_BENCH_REDIS_PORT=56379             Redis, no persistence
#
# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user (made by
# the Debian package) and Redis runs as `redis`; otherwise both run as the calling user.
set -euo pipefail

STATE=${ALLOTMENT_BENCH_STATE:-/tmp/allotment-bench}
PG_PORT=${ALLOTMENT_BENCH_PG_PORT:-55432}
REDIS_PORT=${ALLOTMENT_BENCH_REDIS_PORT:-56379}
PG_USER=allotment_bench
PGDATA="$STATE/postgres"
PGRUN="$STATE/postgres-run"
REDIS_DIR="$STATE/redis"

trap '' PIPE  # a closed stdout (`| head`) must not stop us half-way through `stop`
say() { printf 'bench/setup.sh: %s\n' "$*" 2>/dev/null || true; }

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && printf '%s\n' "$dir"
}

have_everything() {
  [ -n "$(pg_bin)" ] && command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
    && command -v wrk >/dev/null
}

install_packages() {
  if have_everything; then
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  say "installing postgresql, redis-server and wrk with apt-get"
  $sudo apt-get update -qq
  # The packages' postinst would start system-wide services where an init system allows it;
  # this script never uses them.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    postgresql redis-server wrk >/dev/null
  have_everything || { say "install finished but a binary is missing"; exit 1; }
}

# Run a command as the service user when root, else as ourselves.
as_user() {
  local user=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

owned_dir() {  # mkdir a directory owned by the service user
  local user=$1 dir=$2
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown "$user" "$dir"
  fi
  chmod 700 "$dir"
}

pg_running() {
  local bin
  bin=$(pg_bin) || return 1
  [ -f "$PGDATA/PG_VERSION" ] && as_user postgres "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

redis_running() {
  command -v redis-cli >/dev/null \
    && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

start_postgres() {
  local bin
  bin=$(pg_bin)
  if pg_running; then
    say "PostgreSQL already running on 127.0.0.1:$PG_PORT (data $PGDATA)"
    return
  fi
  owned_dir postgres "$PGRUN"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    owned_dir postgres "$PGDATA"
    as_user postgres "$bin/initdb" -D "$PGDATA" -U "$PG_USER" --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 \
      || { say "initdb failed; see $STATE/initdb.log"; exit 1; }
  fi
  # Unix sockets go to a bench-owned directory, TCP to 127.0.0.1 only. shared_buffers holds
  # the whole events table and its index (1.1M rows) so every check reads from memory.
  as_user postgres "$bin/pg_ctl" -D "$PGDATA" -l "$PGRUN/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PGRUN \
        -c shared_buffers=512MB -c max_connections=200" \
    start >/dev/null
  say "started PostgreSQL on 127.0.0.1:$PG_PORT (data $PGDATA, log $PGRUN/postgres.log)"
}

start_redis() {
  if redis_running; then
    say "Redis already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  local user
  user=$(id -un)
  if [ "$(id -u)" -eq 0 ] && id redis >/dev/null 2>&1; then
    user=redis
  fi
  owned_dir "$user" "$REDIS_DIR"
  as_user "$user" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --save '' --appendonly no --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 50); do
    redis_running && break
    sleep 0.1
  done
  redis_running || { say "Redis did not answer; see $REDIS_DIR/redis.log"; exit 1; }
  say "started Redis on 127.0.0.1:$REDIS_PORT (dir $REDIS_DIR, no persistence)"
}

stop_all() {
  local bin
  if pg_running; then
    bin=$(pg_bin)
    as_user postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    say "stopped PostgreSQL on 127.0.0.1:$PG_PORT"
  else
    say "PostgreSQL was not running"
  fi
  if redis_running; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    say "stopped Redis on 127.0.0.1:$REDIS_PORT"
  else
    say "Redis was not running"
  fi
}

status() {
  local rc=0
  if pg_running; then say "PostgreSQL up on 127.0.0.1:$PG_PORT"; else say "PostgreSQL down"; rc=1; fi
  if redis_running; then say "Redis up on 127.0.0.1:$REDIS_PORT"; else say "Redis down"; rc=1; fi
  command -v wrk >/dev/null && say "wrk: $(command -v wrk)" || { say "wrk missing"; rc=1; }
  return $rc
}

case "${1:-start}" in
  start)
    install_packages
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    start_postgres
    start_redis
    say "PostgreSQL DSN: postgresql://$PG_USER@127.0.0.1:$PG_PORT/postgres"
    say "Redis URL:      redis://127.0.0.1:$REDIS_PORT/0"
    say "stop both with: bench/setup.sh stop   (remove their data with: bench/setup.sh clean)"
    ;;
  stop) stop_all ;;
  status) status ;;
  clean)
    stop_all
    rm -rf "$STATE"
    say "removed $STATE"
    ;;
  *)
    echo "usage: bench/setup.sh [start|stop|status|clean]" >&2
    exit 2
    ;;
esac
