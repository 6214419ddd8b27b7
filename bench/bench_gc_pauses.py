"""Cycle-collector pauses of a recovered server, with and without `heap.serving` (issue 21).

A server recovers its customers lazily: each is decoded on first touch, long after the freeze
at the end of recovery. Every collection's pause is timed by a `gc.callbacks` hook while the
recovered shard serves a warm-up pass (one check per customer, so every customer is decoded)
and then `--events` ingests spread over the customers, in-process (no HTTP, so what is timed
is the collector and not the machine's other work). Each policy runs in its own process on
its own copy of one data directory, the policies alternating over `--rounds`:

- `put_off`: what every process did before (`heap.settle`'s threshold alone: full collections
  put off for 1,000 young ones, and then walking everything not frozen since recovery);
- `serving`: `heap.serving()`, which `asgi.served_app` turns on in a server's worker.

Between the two phases the bench calls `heap.settle()`, as a scheduled checkpoint does after
writing its snapshot: under `put_off` that collection walks every customer decoded since
recovery.

    .venv/bin/python -m bench.bench_gc_pauses [--customers 50000] [--events 50000]
        [--rounds 2] [--save]

Pause times are wall-clock (a loaded machine stretches them alike for both policies); the
objects walked do not depend on the machine, and the freeze count says how many were frozen.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.runtime import heap
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from bench.http.state import ENVIRONMENT, build_data_dir, customer_ref
from bench.provenance import short_commit

RESULTS = Path(__file__).resolve().parent / "results"
POLICIES = ("put_off", "serving")
GET = EvaluationContext(method="GET")


class _Pauses:
    """Every collection's generation and pause, from the collector's own callbacks."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))


def _summary(pauses: list[tuple[int, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for generation in (0, 1, 2):
        ms = sorted(p * 1e3 for g, p in pauses if g == generation)
        out[f"gen{generation}"] = {
            "count": len(ms),
            "total_ms": round(sum(ms), 1),
            "max_ms": round(ms[-1], 2) if ms else 0.0,
            "median_ms": round(statistics.median(ms), 3) if ms else 0.0,
        }
    every = [p * 1e3 for _, p in pauses]
    out["pauses_over_5ms"] = sum(1 for p in every if p > 5)
    out["max_ms"] = round(max(every, default=0.0), 2)
    return out


async def _inner(data_dir: Path, policy: str, customers: int, events: int) -> dict[str, Any]:
    settings = Settings(
        data_dir=data_dir, durability="none", snapshot_every_s=1e9, analytics_every_s=1e9,
        snapshot_every_records=10**12,
    )  # fmt: skip
    if policy == "serving":
        heap.serving()
    system = build_system(settings)  # recovery: every customer stays in its stored form
    pauses = _Pauses()
    gc.callbacks.insert(0, pauses)  # before heap's own, so a freeze is inside the pause
    phases: dict[str, Any] = {}
    async with system.running():
        shard = system.shard(ENVIRONMENT)
        started, mark = time.perf_counter(), len(pauses.pauses)
        for i in range(customers):  # the warm-up: every customer decoded on its first touch
            await shard.evaluate(customer_ref(i), "api_calls", None, GET)
        phases["warm_up"] = {"seconds": round(time.perf_counter() - started, 2),
                             **_summary(pauses.pauses[mark:])}  # fmt: skip
        # What a scheduled checkpoint does after writing its snapshot (runtime/upkeep.py):
        # one full collection over whatever is not frozen, on the event loop's thread.
        started, mark = time.perf_counter(), len(pauses.pauses)
        heap.settle()
        phases["settle_after_checkpoint"] = {
            "seconds": round(time.perf_counter() - started, 3),
            **_summary(pauses.pauses[mark:]),
        }
        started, mark = time.perf_counter(), len(pauses.pauses)
        for n in range(events):
            ref = customer_ref((n * 7919) % customers)  # spread, every customer in turn
            event = RecordUsage(
                idempotency_key=f"gc-{n}", event_name="api_calls", feature_key="api_calls",
                occurred_at=shard.now(), units=Decimal(1),
            )  # fmt: skip
            await shard.ingest(CustomerLookup(external_id=ref), event, None)
            if n % 5000 == 4999:
                shard.audits.drain()
        phases["ingest"] = {"seconds": round(time.perf_counter() - started, 2),
                            **_summary(pauses.pauses[mark:])}  # fmt: skip
    gc.callbacks.remove(pauses)
    return {"policy": policy, "phases": phases, "frozen_at_end": gc.get_freeze_count()}


def _run_policy(data: Path, policy: str, customers: int, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gc-pauses-") as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(data, copy)
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_gc_pauses", "--inner", policy, str(copy),
             "--customers", str(customers), "--events", str(events)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{policy} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


def main(customers: int, events: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gc-pauses-state-") as scratch:
        data = Path(scratch) / "data"
        built_s = anyio.run(build_data_dir, data, customers)
        runs: list[dict[str, Any]] = []
        for r in range(rounds):
            order = POLICIES if r % 2 == 0 else POLICIES[::-1]
            runs.extend(_run_policy(data, policy, customers, events) for policy in order)
    return {
        "benchmark": "bench_gc_pauses",
        "command": (
            ".venv/bin/python -m bench.bench_gc_pauses"
            f" --customers {customers} --events {events} --rounds {rounds} --save"
        ),
        "commit": short_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "customers": customers,
        "events": events,
        "state_built_s": round(built_s, 1),
        "runs": runs,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--inner", nargs=2, metavar=("POLICY", "DATA_DIR"))
    parser.add_argument("--save", action="store_true", help="write bench/results/<date>-gc.json")
    args = parser.parse_args()
    if args.inner:
        policy, data_dir = args.inner
        inner = anyio.run(_inner, Path(data_dir), policy, args.customers, args.events)
        print(msgspec.json.encode(inner).decode())
        sys.exit(0)
    result = main(args.customers, args.events, args.rounds)
    text = msgspec.json.format(msgspec.json.encode(result)).decode()
    print(text)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-gc-pauses.json").write_text(text + "\n")
