"""The collector stays off the customers' state (issue 6: a full collection over 20k customers
stopped the loop for ~1 s). What a turn keeps per event is never tracked, and what was alive
at the end of recovery is frozen, so collections walk only what is new."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed, UsageAccepted
from allotment.domain.state import Profile
from allotment.runtime import heap
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


async def test_records_kept_per_event_are_not_tracked_by_the_collector(tmp_path: Path) -> None:
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        lookup = CustomerLookup(external_id="acme")
        await shard.create_customer("acme", Profile(first_name="A"))
        plan = shard.catalog.plan_by_key("pro_monthly")
        assert plan is not None
        subscribed = await shard.command(lookup, Subscribe(plan_id=plan.id))
        assert isinstance(subscribed, Subscribed)
        await shard.command(lookup, MarkInvoicePaid(invoice_id=subscribed.invoice.id))
        event = RecordUsage(
            idempotency_key="e1",
            event_name="chat_completion",
            feature_key="ai_chat",
            occurred_at=START,
            units=Decimal(1830),
        )
        reply = await shard.ingest(lookup, event, None)
        assert isinstance(reply, UsageAccepted)
        decision = await shard.evaluate("acme", "ai_chat", None, EvaluationContext(method="GET"))
        kept = [
            reply,
            decision,
            *shard.audits.drain(),
            subscribed.subscription,
            subscribed.invoice,
        ]
        assert len(kept) >= 5  # events and ledger rows are no longer kept: the journal has them
        tracked = [type(r).__name__ for r in kept if gc.is_tracked(r)]
        assert tracked == []


async def test_recovered_state_is_out_of_collections(tmp_path: Path) -> None:
    """What recovery loads is frozen out of the collector's generations, and the customers
    stay in their stored form (bytes, which no collection scans) until first touched."""
    settings = Settings(data_dir=tmp_path, clock="manual")
    system = build_system(settings, ManualClock(START))
    async with system.running():
        await system.shard("test").create_customer("acme", Profile(first_name="A"))
        await system.checkpoint_all()
    gc.unfreeze()
    restarted = build_system(settings, ManualClock(START))
    directory = restarted.shard("test").directory
    assert gc.get_freeze_count() > 0
    assert len(directory) == 1 and directory.warm == 0
    gc.unfreeze()


class _Node:
    """A container the collector tracks, as the state's structs and dicts are."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _frozen(objects: Sequence[object]) -> bool:
    """Whether none of `objects` is in a collected generation (frozen ones are in none)."""
    wanted = {id(o) for o in objects}
    return not any(id(o) in wanted for o in gc.get_objects())


def test_a_serving_process_freezes_what_survives_each_full_collection() -> None:
    """Issue 21: customers decoded after recovery (lazily, on first touch) were walked, all of
    them, by the first full collection that came: 1.7 s after a warm-up over 100k customers.
    While serving, what survives a full collection is frozen, so the next walks only what is
    new; garbage cycles are still collected first."""
    saved = gc.get_threshold()
    heap.serving()
    try:
        assert gc.get_threshold()[2] == 2  # a full collection after every second young one
        heap.settle()  # a checkpoint's settle keeps the serving pace
        assert gc.get_threshold()[2] == 2
        kept = [_Node() for _ in range(100)]
        cycle = _Node()
        cycle.other = _Node()
        cycle.other.other = cycle
        collected_before = gc.get_stats()[2]["collected"]
        del cycle
        assert not _frozen(kept)
        gc.collect()
        assert _frozen(kept)
        assert gc.get_stats()[2]["collected"] >= collected_before + 2
        newer = [_Node() for _ in range(10)]
        gc.collect(1)  # a young collection freezes nothing
        assert not _frozen(newer)
    finally:
        heap.not_serving()
        gc.set_threshold(*saved)
        gc.unfreeze()
    assert not any(getattr(c, "__module__", "") == heap.__name__ for c in gc.callbacks)


def test_a_process_that_does_not_serve_keeps_full_collections_put_off() -> None:
    saved = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_threshold()[2] == 1_000
        kept = [_Node() for _ in range(10)]
        gc.collect()
        assert not _frozen(kept)  # a test process's garbage is never kept by a freeze
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def test_the_served_app_is_built_in_a_serving_process() -> None:
    """`asgi.served_app` (what granian's worker and the Ray front door's workers call) turns
    the policy on; in a process of its own, as a server's worker is."""
    script = (
        "import gc\n"
        "from allotment import asgi\n"
        "asgi.served_app(lambda settings, announce: object())\n"
        "kept = [[n] for n in range(50)]\n"
        "before = gc.get_freeze_count()\n"
        "gc.collect()\n"
        "print(gc.get_threshold()[2], gc.get_freeze_count() - before >= 50)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["2", "True"]
