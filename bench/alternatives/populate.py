"""Loading the same customers and events into each design.

Every design holds the same population: for each size N, `customers` customers named
`n<N>-c<i>`, each on `pro_monthly` (paid, active) with N `api_calls` events of 1 unit in the
current period. All sizes live side by side in one database, one Redis and one allotment data
directory, so a run switches size by switching the customers it asks about.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system
from bench.alternatives.common import (
    EVENTS_TABLE,
    FEATURE,
    PLAN,
    SUM_SQL,
    counter_key,
    customer_refs,
)

__all__ = ("explain_postgres", "populate_allotment", "populate_postgres", "populate_redis")

_ONE = Decimal(1)


async def populate_allotment(
    data_dir: Path, sizes: list[int], customers: int, now: datetime
) -> tuple[datetime, float]:
    """Build a data directory the real server recovers from: customers subscribed and paid
    through the shard API, events ingested through `shard.ingest` (the code path of
    `POST /events`), then a checkpoint. Returns the customers' period start and the seconds
    taken. Populating runs with durability `none`; the server then serves with fsync."""
    started = time.perf_counter()
    settings = Settings(
        data_dir=data_dir,
        clock="manual",
        durability="none",
        snapshot_every_s=1e9,
        snapshot_every_records=10**12,
        analytics_every_s=1e9,
    )
    system = build_system(settings, ManualClock(now))
    period_start: datetime | None = None
    async with system.running():
        shard = system.shard("test")
        plan = shard.catalog.plan_by_key(PLAN)
        assert plan is not None
        for size in sizes:
            for ref in customer_refs(size, customers):
                lookup = CustomerLookup(external_id=ref)
                await shard.create_customer(ref, Profile(first_name="Bench"))
                reply = await shard.command(lookup, Subscribe(plan_id=plan.id))
                assert isinstance(reply, Subscribed), reply
                await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
                period_start = reply.subscription.current_period_start
                for j in range(size):
                    event = RecordUsage(
                        idempotency_key=f"evt-{ref}-{j}",
                        event_name=FEATURE,
                        feature_key=FEATURE,
                        occurred_at=now,
                        units=_ONE,
                    )
                    await shard.ingest(lookup, event, None)
                    if j % 2000 == 1999:
                        shard.audits.drain()
                        await anyio.lowlevel.checkpoint()  # let the journal writer run
        await system.checkpoint_all()
    assert period_start is not None
    return period_start, time.perf_counter() - started


def _event_rows(
    sizes: list[int], customers: int, period_start: datetime, now: datetime
) -> Iterator[tuple[str, str, str, str, int, datetime]]:
    """Events in time order, customers of one size interleaved, spread over the period so far."""
    span = max(now - period_start, timedelta(seconds=1))
    for size in sizes:
        refs = customer_refs(size, customers)
        for j in range(size):
            at = period_start + span * (j / size)
            for ref in refs:
                yield (ref, FEATURE, FEATURE, f"evt-{ref}-{j}", 1, at)


async def populate_postgres(
    dsn: str, sizes: list[int], customers: int, period_start: datetime, now: datetime
) -> dict[str, Any]:
    """Recreate the events table, COPY the events in, index, VACUUM ANALYZE (so the SUM runs
    as an index-only scan over the customer's events of the period)."""
    import asyncpg  # noqa: PLC0415 - a bench extra

    started = time.perf_counter()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {EVENTS_TABLE}")
        await connection.execute(
            f"""CREATE TABLE {EVENTS_TABLE} (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                customer_ref text NOT NULL,
                feature_key text NOT NULL,
                event_name text NOT NULL,
                idempotency_key text NOT NULL,
                usage_units bigint NOT NULL,
                occurred_at timestamptz NOT NULL
            )"""
        )
        await connection.copy_records_to_table(
            EVENTS_TABLE,
            records=_event_rows(sizes, customers, period_start, now),
            columns=[
                "customer_ref",
                "feature_key",
                "event_name",
                "idempotency_key",
                "usage_units",
                "occurred_at",
            ],
        )
        # The index the query needs; usage_units rides along so no heap page is read.
        await connection.execute(
            f"CREATE INDEX {EVENTS_TABLE}_usage ON {EVENTS_TABLE} "
            "(customer_ref, feature_key, occurred_at) INCLUDE (usage_units)"
        )
        await connection.execute(f"VACUUM ANALYZE {EVENTS_TABLE}")
        rows = await connection.fetchval(f"SELECT count(*) FROM {EVENTS_TABLE}")
        table_bytes = await connection.fetchval(f"SELECT pg_total_relation_size('{EVENTS_TABLE}')")
        version = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "rows": int(rows),
        "table_and_index_bytes": int(table_bytes),
        "server_version": str(version),
    }


async def explain_postgres(
    dsn: str, sizes: list[int], customers: int, period_start: datetime, repeats: int = 5
) -> dict[str, dict[str, Any]]:
    """The plan and the server-side execution time (median of `repeats`, ms) of one check's
    SUM per size: what Postgres itself spends, without the network and the front door."""
    import asyncpg  # noqa: PLC0415 - a bench extra

    connection = await asyncpg.connect(dsn)
    result: dict[str, dict[str, Any]] = {}
    try:
        for size in sizes:
            ref = customer_refs(size, customers)[0]
            times: list[float] = []
            plan: Any = None
            for _ in range(repeats):
                raw = await connection.fetchval(
                    f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {SUM_SQL}", ref, FEATURE, period_start
                )
                plan = _json(raw)[0]
                times.append(float(plan["Execution Time"]))
            node = plan["Plan"]
            path = [node["Node Type"]]
            while node.get("Plans"):
                node = node["Plans"][0]
                path.append(node["Node Type"])
            result[str(size)] = {
                "execution_ms_median": round(sorted(times)[len(times) // 2], 3),
                "plan": " > ".join(path),
                "index": node.get("Index Name"),
                "rows_per_loop": node.get("Actual Rows"),
                "loops": node.get("Actual Loops"),
                "heap_fetches": node.get("Heap Fetches"),
            }
    finally:
        await connection.close()
    return result


def _json(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, str) else raw


async def populate_redis(
    url: str, sizes: list[int], customers: int, period_start: datetime
) -> dict[str, Any]:
    """The counters as the cache design builds them: one INCRBY per event (pipelined)."""
    import redis.asyncio  # noqa: PLC0415 - a bench extra

    started = time.perf_counter()
    client: Any = redis.asyncio.Redis.from_url(url)
    try:
        for size in sizes:
            for ref in customer_refs(size, customers):
                key = counter_key(ref, FEATURE, period_start)
                await client.delete(key)
                for start in range(0, size, 10_000):
                    pipe = client.pipeline(transaction=False)
                    for _ in range(start, min(size, start + 10_000)):
                        pipe.incrby(key, 1)
                    await pipe.execute()
        info = await client.info("server")
    finally:
        await client.aclose()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "counters": len(sizes) * customers,
        "server_version": str(info.get("redis_version")),
    }
