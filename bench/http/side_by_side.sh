#!/usr/bin/env bash
# Two builds of allotment side by side over HTTP, both servers up at once, runs alternating:
# the check (check.lua over 100k customers), the hot check (check.lua on 1,000 customers: an
# app's users checking again and again) and the fsync ingest (post.lua), wrk -t2 -c64 10 s,
# three rounds each, after one warming pass per server (so lazily decoded customers are warm).
#
#   bench/http/side_by_side.sh OLD_CHECKOUT NEW_CHECKOUT
#   ROUNDS=7 KINDS="check hot" bench/http/side_by_side.sh OLD NEW   # more rounds, fewer kinds
#
# Odd rounds run OLD first and even rounds NEW first (ABBA), so neither build always runs
# second, after the other has warmed the machine or left it its garbage.
#
# The data directory is built once by OLD's bench.http.state (100,000 customers) and copied, so
# both recover the same state (a newer build reads an older snapshot; not the other way round).
set -euo pipefail
OLD=$1 NEW=$2 WORK=$(mktemp -d) KEY=sk_test_sidebysidesidebysidesidebyside
PY=${PYTHON:-$(pwd)/.venv/bin/python} LUA=$(cd "$(dirname "$0")" && pwd)/lua
(cd "$OLD" && PYTHONPATH=$OLD/src:$OLD "$PY" -m bench.http.state "$WORK/data-old" --customers 100000)
cp -a "$WORK/data-old" "$WORK/data-new"
start() {  # data-dir checkout port
  (cd "$2" && PYTHONPATH=$2/src exec "$PY" -m allotment serve --durability fsync --data-dir "$1" \
    --api-key $KEY --port "$3" --checkpoint-every 86400 --analytics-every 86400 >"$WORK/log-$3" 2>&1) &
}
start "$WORK/data-old" "$OLD" 48101
start "$WORK/data-new" "$NEW" 48102
trap 'pkill -f "data-dir $WORK" || true; rm -rf "$WORK"' EXIT
for p in 48101 48102; do
  for _ in $(seq 1 300); do
    curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$p/api/v1/client/entitlements/c0/api_calls" >/dev/null && break
    sleep 1
  done
  wrk -t2 -c64 -d8s -s "$LUA/check.lua" "http://127.0.0.1:$p" -- $KEY 100000 api_calls >/dev/null
done
for kind in ${KINDS:-check hot ingest}; do
  for r in $(seq 1 "${ROUNDS:-3}"); do
    if [ $((r % 2)) = 1 ]; then order="48101 48102"; else order="48102 48101"; fi
    for p in $order; do
      if [ $kind = check ]; then args=(-s "$LUA/check.lua" "http://127.0.0.1:$p" -- $KEY 100000 api_calls)
      elif [ $kind = hot ]; then args=(-s "$LUA/check.lua" "http://127.0.0.1:$p" -- $KEY 1000 api_calls)
      else args=(-s "$LUA/post.lua" "http://127.0.0.1:$p" -- $KEY 100000 event "run$r$p"); fi
      printf '%s round %s %s: ' $kind $r "$([ $p = 48101 ] && echo old || echo new)"
      wrk -t2 -c64 -d10s "${args[@]}" | awk '/Requests\/sec/ {print $2}'
    done
  done
done
