"""In-process engine microbenchmark: entitlement checks and usage ingests per second.

Measures one customer turn without HTTP, over a population of paid customers with usage.
Each figure is the median of several rounds; rounds alternate operations so that machine
noise hits all of them alike.

    .venv/bin/python -m bench.bench_engine [--customers 10000] [--ops 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import anyio
import msgspec

from allotment.config import Settings
from allotment.domain.commands import EvaluateEntitlement, MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.runtime import heap
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from bench.provenance import short_commit

RESULTS = Path(__file__).resolve().parent / "results"
GET = EvaluationContext(method="GET")


async def _populate(shard: LocalShard, customers: int) -> None:
    plan = shard.catalog.plan_by_key("pro_monthly")
    assert plan is not None
    for i in range(customers):
        ref = f"c{i}"
        await shard.create_customer(ref, Profile(first_name="Bench"))
        reply = await shard.command(CustomerLookup(external_id=ref), Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed)
        await shard.command(
            CustomerLookup(external_id=ref), MarkInvoicePaid(invoice_id=reply.invoice.id)
        )
        for j in range(3):
            await shard.ingest(
                CustomerLookup(external_id=ref), _event(shard, f"warm-{i}-{j}"), None
            )


def _event(shard: LocalShard, key: str) -> RecordUsage:
    return RecordUsage(
        idempotency_key=key,
        event_name="api_calls",
        feature_key="api_calls",
        occurred_at=shard._clock.now(),
        units=Decimal(1),
    )


async def _round(shard: LocalShard, customers: int, ops: int, round_no: int) -> dict[str, float]:
    refs = [f"c{i % customers}" for i in range(ops)]
    lookups = [CustomerLookup(external_id=r) for r in refs]
    actors = [shard.find(lookup) for lookup in lookups]
    command = EvaluateEntitlement(feature_key="api_calls")
    ctx = shard.context()
    results: dict[str, float] = {}

    # Every customer changed since its last check (the previous round ingested for all), so
    # the first pass decides afresh; the second repeats the same checks, answered from the
    # actor's last answer, as an app's per-request gate mostly is.
    distinct = list({id(a): a for a in actors}.values())
    for name in ("check_turn_first", "check_turn_repeat"):
        started = time.perf_counter()
        for actor in distinct:
            assert actor is not None
            actor.turn(command, ctx, [])
        results[name] = len(distinct) / (time.perf_counter() - started)

    started = time.perf_counter()
    for ref in refs:
        await shard.evaluate(ref, "api_calls", None, GET)
    results["check_via_shard"] = ops / (time.perf_counter() - started)

    started = time.perf_counter()
    for ref in refs:
        await shard.evaluate(ref, "api_calls", Decimal(5000), GET)
    results["simulate_via_shard"] = ops / (time.perf_counter() - started)

    events = [_event(shard, f"r{round_no}-{i}") for i in range(ops)]
    started = time.perf_counter()
    for lookup, event in zip(lookups, events, strict=True):
        await shard.ingest(lookup, event, None)
    results["ingest_via_shard"] = ops / (time.perf_counter() - started)
    shard.audits.drain()
    return results


async def main(customers: int, ops: int, rounds: int) -> dict[str, object]:
    # In memory: this measures turns, not the disk (bench_durability measures that).
    clock = ManualClock(datetime(2025, 1, 15, tzinfo=UTC))
    system = build_system(Settings(clock="manual"), clock, persistent=False)
    shard = system.shard("test")
    await _populate(shard, customers)
    heap.settle()  # what a server does at the end of recovery and after each checkpoint
    samples = [await _round(shard, customers, ops, r) for r in range(rounds)]
    medians = {name: statistics.median(s[name] for s in samples) for name in samples[0]}
    return {
        "benchmark": "bench_engine",
        "command": (
            ".venv/bin/python -m bench.bench_engine"
            f" --customers {customers} --ops {ops} --rounds {rounds} --save"
        ),
        "commit": short_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "customers": customers,
        "ops_per_round": ops,
        "rounds": rounds,
        "median_ops_per_s": {k: round(v) for k, v in medians.items()},
        "median_us_per_op": {k: round(1e6 / v, 2) for k, v in medians.items()},
        "samples_ops_per_s": [{k: round(v) for k, v in s.items()} for s in samples],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--save", action="store_true", help="write bench/results/<date>-engine.json"
    )
    args = parser.parse_args()
    result = anyio.run(main, args.customers, args.ops, args.rounds)
    text = msgspec.json.format(msgspec.json.encode(result)).decode()
    print(text)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-engine.json").write_text(text + "\n")
