"""Durability and analytics figures: durable ingest with fsync, checkpoint, analytics snapshot
and recovery times, the check p99 while a checkpoint or an analytics snapshot is written, and
the memory cost of a remembered idempotency key.

    .venv/bin/python -m bench.bench_durability [--customers 100000] [--save]

In-process (no HTTP), on the real file journal in a temporary directory. Latency percentiles
are of `shard.evaluate` calls issued back to back while the background work runs on the same
event loop, so a stall of the loop shows up as check latency.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.runtime import heap
from allotment.runtime.clock import ManualClock
from allotment.runtime.idempotency import EventKeyIndex
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from bench.provenance import short_commit

RESULTS = Path(__file__).resolve().parent / "results"
GET = EvaluationContext(method="GET")
START = datetime(2025, 1, 15, tzinfo=UTC)


def _system(data_dir: Path, durability: str) -> ActorSystem:
    settings = Settings(data_dir=data_dir, clock="manual", durability=durability,  # type: ignore[arg-type]
                        snapshot_every_s=1e9, analytics_every_s=1e9)  # fmt: skip
    return build_system(settings, ManualClock(START))


def _event(key: str, feature: str = "api_calls") -> RecordUsage:
    return RecordUsage(
        idempotency_key=key,
        event_name=feature,
        feature_key=feature,
        occurred_at=START,
        units=Decimal(1),
    )


async def _populate(shard: LocalShard, customers: int) -> None:
    """Each customer: a paid pro subscription, a TOKENS pool, 3 metered events."""
    plan = shard.catalog.plan_by_key("pro_monthly")
    assert plan is not None
    for i in range(customers):
        lookup = CustomerLookup(external_id=f"c{i}")
        await shard.create_customer(f"c{i}", Profile(first_name="Bench"))
        reply = await shard.command(lookup, Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed)
        await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
        for j, feature in enumerate(("api_calls", "ai_chat", "api_calls")):
            await shard.ingest(lookup, _event(f"p{i}-{j}", feature), None)
        if i % 5000 == 0:
            shard.audits.drain()
            await shard.journal.flush()  # durability `none`: keep the writer's backlog bounded


async def _ingest_rates(data_dir: Path) -> dict[str, float]:
    """Durable (fsync) ingest: one client at a time, then 64 concurrent clients."""
    system = _system(data_dir, "fsync")
    results: dict[str, float] = {}
    async with system.running():
        shard = system.shard("test")
        await _populate(shard, 100)
        lookups = [CustomerLookup(external_id=f"c{i % 100}") for i in range(2000)]
        started = time.perf_counter()
        for n in range(500):
            await shard.ingest(lookups[n], _event(f"s{n}"), None)
        results["ingest_fsync_sequential_events_per_s"] = 500 / (time.perf_counter() - started)
        journal = system.storage.journal("test")  # type: ignore[union-attr]
        commits_before = journal.commits
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for worker in range(64):
                tg.start_soon(_worker, shard, lookups, worker)
        elapsed = time.perf_counter() - started
        results["ingest_fsync_64_concurrent_events_per_s"] = 64 * 100 / elapsed
        results["events_per_fsync_64_concurrent"] = (
            64 * 100 / max(1, journal.commits - commits_before)
        )
    return results


async def _worker(shard: LocalShard, lookups: list[CustomerLookup], worker: int) -> None:
    for n in range(100):
        await shard.ingest(
            lookups[(worker * 100 + n) % len(lookups)], _event(f"w{worker}-{n}"), None
        )


async def _check_latencies(
    shard: LocalShard, customers: int, during: Callable[[], Awaitable[Any]] | None
) -> tuple[list[float], Any]:
    """Check latencies (µs) while `during` runs, or for a fixed count when it is None."""
    latencies: list[float] = []
    result: Any = None
    done = anyio.Event()

    async def background() -> None:
        nonlocal result
        if during is not None:
            result = await during()
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(background)
        i = 0
        while not done.is_set() or len(latencies) < 2000:
            started = time.perf_counter()
            await shard.evaluate(f"c{i % customers}", "api_calls", None, GET)
            await anyio.lowlevel.checkpoint()  # yield like a server between requests
            latencies.append((time.perf_counter() - started) * 1e6)
            i += 1
            if during is None and len(latencies) >= 20000:
                break
    shard.audits.drain()
    return latencies, result


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": _pct(values, 0.5), "p99": _pct(values, 0.99), "max": round(max(values), 1)}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _key_memory(keys: int) -> float:
    index = EventKeyIndex()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(keys):
        index.reserve(f"evt_{i:012d}-0f8c1d2e-3b4a", START)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / keys


async def main(customers: int) -> dict[str, Any]:
    # The collector's policy of a served process (asgi.served_app): without it, the first full
    # collection walked every customer built here, a stop of 0.9-1.6 s that a server does not
    # have (bench/README, session 14).
    heap.serving()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        result.update(await _ingest_rates(Path(directory) / "ingest"))
        data_dir = Path(directory) / "state"
        system = _system(data_dir, "none")  # populate fast; the figures below are about reads
        async with system.running():
            shard = system.shard("test")
            started = time.perf_counter()
            await _populate(shard, customers)
            result["populate_s"] = round(time.perf_counter() - started, 1)
            baseline, _ = await _check_latencies(shard, customers, None)
            during_checkpoint, checkpoints = await _check_latencies(
                shard, customers, system.checkpoint_all
            )
            during_analytics, analytics = await _check_latencies(
                shard, customers, system.snapshot_analytics
            )
            result["checkpoint_s"] = round(checkpoints[0].seconds, 2)
            result["checkpoint_bytes"] = checkpoints[0].bytes
            result["analytics_snapshot_s"] = round(analytics.seconds, 2)
            result["check_us"] = {
                name: _summary(values)
                for name, values in (
                    ("baseline", baseline),
                    ("during_checkpoint", during_checkpoint),
                    ("during_analytics", during_analytics),
                )
            }
            result["check_p99_ratio_during_checkpoint"] = round(
                _pct(during_checkpoint, 0.99) / _pct(baseline, 0.99), 2
            )
            result["check_p99_ratio_during_analytics"] = round(
                _pct(during_analytics, 0.99) / _pct(baseline, 0.99), 2
            )
            await system.checkpoint_all()
            for n in range(1000):  # a tail to replay on top of the snapshot
                await shard.ingest(
                    CustomerLookup(external_id=f"c{n % customers}"), _event(f"tail{n}"), None
                )
        started = time.perf_counter()
        recovered = _system(data_dir, "none")
        result["recovery_s"] = round(time.perf_counter() - started, 2)
        assert recovered.storage is not None
        result["recovery"] = msgspec.to_builtins(recovered.storage.recoveries[0])
    result["memory_bytes_per_remembered_key"] = round(_key_memory(200_000), 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--save", action="store_true", help="write bench/results/<date>-durability.json"
    )
    args = parser.parse_args()
    figures = anyio.run(main, args.customers)
    report = {
        "benchmark": "bench_durability",
        "command": (
            f".venv/bin/python -m bench.bench_durability --customers {args.customers} --save"
        ),
        "commit": short_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "customers": args.customers,
        **figures,
    }
    text = msgspec.json.format(msgspec.json.encode(report)).decode()
    print(text)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-durability.json").write_text(text + "\n")
