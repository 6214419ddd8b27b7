"""The collector stays off the customers' state (issue 6: a full collection over 20k customers
stopped the loop for ~1 s). What a turn keeps per event is never tracked, and what was alive
at the end of recovery is frozen, so collections walk only what is new."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed, UsageAccepted
from allotment.domain.state import Profile
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
