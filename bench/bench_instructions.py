"""Instructions per operation, counted by valgrind's callgrind: a figure that does not move
with the machine's load, for before/after comparisons of the hot path on a busy machine.

Each operation is run twice under callgrind, for `--ops` and for `3 × --ops` operations after
the same set-up; the difference of the two totals, divided by `2 × --ops`, is the cost of one
operation with start-up, imports and set-up cancelled out.

    .venv/bin/python -m bench.bench_instructions [--ops 400] [--customers 200] [--save NAME]
        [--operations check ingest reserve pair]

`check` is a check as apps repeat it (mostly answered from the actor's last answer: the
customers do not change between checks), `check_fresh` one that decides afresh, as the first
check after any change does. `reserve` holds one unit of `api_calls` (a reserve turn, never
settled: what a turn costs with the holds it leaves, at most `3 × ops / customers` per
customer); `pair` is a reserve and the commit of one unit (two turns; compare it with one
`ingest`, issue 14).

Inner mode (what callgrind runs): `--inner OP N`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from allotment.config import Settings
from allotment.domain.commands import CommitReservation, CommitUnits, HoldItem, Reserve
from allotment.domain.reservation_replies import Committed, Reserved
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system
from bench.bench_engine import GET, _event, _populate
from bench.provenance import short_commit

RESULTS = Path(__file__).resolve().parent / "results"
OPERATIONS = ("check", "check_fresh", "ingest", "reserve", "pair")
HOLD = (HoldItem(feature_key="api_calls", units=Decimal(1)),)
COMMIT = (CommitUnits(feature_key=None, usage_units=Decimal(1)),)


async def _inner(operation: str, ops: int, customers: int) -> None:
    clock = ManualClock(datetime(2025, 1, 15, 10, 30, tzinfo=UTC))
    system = build_system(Settings(clock="manual"), clock, persistent=False)
    async with system.running():
        shard = system.shard("test")
        await _populate(shard, customers)
        for i in range(ops):
            lookup = CustomerLookup(external_id=f"c{i % customers}")
            if operation == "check":
                await shard.evaluate(f"c{i % customers}", "api_calls", None, GET)
            elif operation == "check_fresh":
                # A check that decides: the actor's last answer (what repeated checks of an
                # unchanged customer get) is dropped first, as any applied fact drops it.
                actor = shard.find(lookup)
                assert actor is not None
                actor._last_check = None
                await shard.evaluate(f"c{i % customers}", "api_calls", None, GET)
            elif operation == "ingest":
                await shard.ingest(lookup, _event(shard, f"op-{i}"), None)
            else:
                await _reserve(shard, lookup, f"op-{i}", commit=operation == "pair")


async def _reserve(shard: LocalShard, lookup: CustomerLookup, key: str, commit: bool) -> None:
    held = await shard.reserve(lookup, Reserve(reservation_id=key, items=HOLD))
    assert isinstance(held, Reserved), held
    if commit:
        command = CommitReservation(reservation_id=key, items=COMMIT, occurred_at=shard.now())
        committed = await shard.settle(key, command, None)
        assert isinstance(committed, Committed), committed


def _instructions(operation: str, ops: int, customers: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.bench_instructions",
            "--inner", operation, str(ops), "--customers", str(customers),
        ]  # fmt: skip
        # A fixed hash seed: string hashes decide dict and set probing, so a random seed per
        # process moves the count by a few per cent between two runs of the same code.
        # No OpenBLAS thread pool either: pyarrow imports numpy, whose BLAS threads, scheduled
        # by valgrind one thread at a time, added about 7,500 instructions per operation that
        # came and went between runs (counted under `blas_thread_server`).
        environment = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
        match = re.search(r"Collected : (\d+)", done.stderr)
        assert match is not None, done.stderr[-2000:]
        return int(match.group(1))


def measure(ops: int, customers: int, operations: list[str]) -> dict[str, object]:
    """Instructions per operation for each of `operations`."""
    figures: dict[str, object] = {}
    for operation in operations:
        low = _instructions(operation, ops, customers)
        high = _instructions(operation, 3 * ops, customers)
        figures[operation] = {
            "instructions_per_op": round((high - low) / (2 * ops)),
            "total_low": low,
            "total_high": high,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--inner", nargs=2, metavar=("OP", "N"))
    parser.add_argument("--operations", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--save", metavar="NAME", help="write bench/results/<date>-NAME.json")
    args = parser.parse_args()
    if args.inner:
        anyio.run(_inner, args.inner[0], int(args.inner[1]), args.customers)
        return
    result = {
        "benchmark": "bench_instructions",
        "command": " ".join(["python -m bench.bench_instructions", *sys.argv[1:]]),
        "commit": short_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "ops": args.ops,
        "customers": args.customers,
        "operations": measure(args.ops, args.customers, args.operations),
    }
    result["ratios"] = _ratios(result["operations"])
    print(json.dumps(result, indent=1))
    if args.save:
        path = RESULTS / f"{datetime.now(UTC).date()}-{args.save}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")


def _ratios(figures: dict[str, Any]) -> dict[str, float]:
    """Issue 14's targets: reserve <= 2x check, and a reserve+commit pair against one ingest."""
    per_op = {name: figure["instructions_per_op"] for name, figure in figures.items()}
    ratios = {}
    for check in ("check", "check_fresh"):
        if "reserve" in per_op and check in per_op:
            ratios[f"reserve_over_{check}"] = round(per_op["reserve"] / per_op[check], 2)
    if "pair" in per_op and "ingest" in per_op:
        ratios["pair_over_ingest"] = round(per_op["pair"] / per_op["ingest"], 2)
    return ratios


if __name__ == "__main__":
    main()
