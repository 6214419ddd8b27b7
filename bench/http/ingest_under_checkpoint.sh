#!/usr/bin/env bash
# The ingest's open-loop latency at 2k events/s across a checkpoint, two builds side by side
# (issue 21: ingest p99 at 2k events/s <= 5 ms). Each run recovers a copy of one data
# directory (DATA, built once by bench.http.state, 100k customers), warms it with 15 s of
# checks over every customer (wrk, check.lua: every customer decoded, as after a day of
# traffic), then sends 3 rounds of 10 s of events at 2,000/s (bench.http.openloop, 64
# connections). The data directory's journal holds enough records since its snapshot that
# the 100k-record checkpoint falls in the first round.
#
#   bench/http/ingest_under_checkpoint.sh OLD_CHECKOUT NEW_CHECKOUT DATA [VARIANTS]
#
# VARIANTS is the order, "old new new old" by default. One line per round:
#   <variant> <round> <achieved/s> p50 <ms> p99 <ms> max <ms>
set -u
OLD=$1 NEW=$2 DATA=$3 VARIANTS=${4:-old new new old}
KEY=sk_test_benchmarkbenchmarkbenchmarkbenchmark PORT=48203
PY=${PYTHON:-$(pwd)/.venv/bin/python} HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'pkill -f "data-dir $WORK" || true; rm -rf "$WORK"' EXIT
for variant in $VARIANTS; do
  src=$([ "$variant" = old ] && echo "$OLD" || echo "$NEW")
  rm -rf "$WORK/data"; cp -a "$DATA" "$WORK/data"
  (cd "$src" && PYTHONPATH=$src/src exec "$PY" -m allotment serve --durability fsync \
    --data-dir "$WORK/data" --api-key $KEY --port $PORT --checkpoint-every 86400 \
    --analytics-every 86400 >"$WORK/log-$variant" 2>&1) &
  for _ in $(seq 1 120); do
    curl -sf -H "Authorization: Bearer $KEY" \
      "http://127.0.0.1:$PORT/api/v1/client/entitlements/c0/api_calls" >/dev/null && break
    sleep 1
  done
  wrk -t2 -c64 -d15s -s "$HERE/lua/check.lua" "http://127.0.0.1:$PORT" -- $KEY 100000 api_calls >/dev/null
  for r in 1 2 3; do
    (cd "$HERE/../.." && "$PY" -m bench.http.openloop --port $PORT --kind event --rate 2000 \
      --duration 10 --warmup 1 --connections 64 --customers 100000 --key $KEY \
      --nonce "ab$variant$r$RANDOM") | "$PY" -c "import json,sys
d=json.load(sys.stdin);l=d['latency_ms']
print('$variant', $r, d['achieved_rate'], 'p50', l['p50'], 'p99', l['p99'], 'max', l['max'])"
  done
  pkill -f "data-dir $WORK" || true
  for _ in $(seq 1 120); do pgrep -f "data-dir $WORK" >/dev/null || break; sleep 0.5; done  # its export at stop
  grep -h 'storage: checkpoint' "$WORK/log-$variant" | sed "s/^/$variant /" | cut -c1-220 || true
done
