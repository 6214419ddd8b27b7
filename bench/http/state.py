"""A data directory with realistic state, built in-process so the server can recover it.

Creating 100k customers through HTTP would take minutes; the shard API does it in about 30 s.
Each customer `c<i>` is on `pro_monthly`, paid (so it holds the 1,000,000 TOKENS pool), with
a few metered events on `api_calls` and `ai_chat`. The state is checkpointed, so the server
started on the directory recovers it from the snapshot.

    .venv/bin/python -m bench.http.state DIR [--customers 100000]
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal
from pathlib import Path

import anyio

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system

__all__ = ("ENVIRONMENT", "build_data_dir", "customer_ref")

ENVIRONMENT = "test"  # the shard that `sk_test_` keys reach
_DRAIN_EVERY = 5000  # customers between drains of the analytics buffers


def customer_ref(index: int) -> str:
    return f"c{index}"


def _event(shard: LocalShard, key: str, feature: str, units: int) -> RecordUsage:
    return RecordUsage(
        idempotency_key=key,
        event_name=feature,
        feature_key=feature,
        occurred_at=shard._clock.now(),
        units=Decimal(units),
    )


async def _populate(shard: LocalShard, customers: int) -> None:
    plan = shard.catalog.plan_by_key("pro_monthly")
    assert plan is not None
    for i in range(customers):
        ref = customer_ref(i)
        lookup = CustomerLookup(external_id=ref)
        await shard.create_customer(ref, Profile(first_name="Bench", email=f"{ref}@example.com"))
        reply = await shard.command(lookup, Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed)
        await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
        for j, (feature, units) in enumerate(
            (("api_calls", 3), ("ai_chat", 1830), ("api_calls", 1))
        ):
            await shard.ingest(lookup, _event(shard, f"warm-{i}-{j}", feature, units), None)
        if i % _DRAIN_EVERY == 0:
            shard.audits.drain()
            # With durability `none` nothing here awaits the journal writer, so without this
            # its backlog grows past `journal_pending_bytes_max` and writes raise Overloaded.
            await shard.journal.flush()


async def build_data_dir(data_dir: Path, customers: int) -> float:
    """Populate `data_dir` with `customers` paid customers and checkpoint it.

    Args:
        data_dir: an empty (or absent) directory; the server is later started on it.
        customers: how many customers `c0` .. `c<customers-1>` to create.

    Returns:
        The seconds it took.
    """
    started = time.perf_counter()
    settings = Settings(
        data_dir=data_dir, durability="none", snapshot_every_s=1e9, analytics_every_s=1e9
    )
    system = build_system(settings)
    async with system.running():
        await _populate(system.shard(ENVIRONMENT), customers)
        await system.checkpoint_all()
    return time.perf_counter() - started


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    seconds = anyio.run(build_data_dir, args.data_dir, args.customers)
    print(f"{args.customers} customers in {seconds:.1f} s under {args.data_dir}")
