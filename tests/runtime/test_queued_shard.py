"""The second implementation of the `Shard` protocol (issue 11): every call crosses a mailbox.
The HTTP suite runs against it through the "queued" system of tests/conftest.py (on demand:
`ALLOTMENT_TEST_SYSTEMS`); these tests check the forwarding itself, in every run."""

from __future__ import annotations

from decimal import Decimal

import anyio
import anyio.lowlevel
import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import UsageAccepted
from allotment.domain.state import Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.queued_shard import QueuedShard, ShardStopped
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


async def test_calls_cross_the_mailbox_and_errors_come_back() -> None:
    system = build_system(Settings(clock="manual"), ManualClock(START), persistent=False,
                          queued=True)  # fmt: skip
    async with system.running():
        front = system.route("test")
        assert isinstance(front, QueuedShard)
        await front.create_customer("q", Profile(first_name="Q"))
        assert system.shard("test").customer_count() == front.customer_count() == 1

        async def event(n: int) -> None:
            e = RecordUsage(idempotency_key=f"k{n}", event_name="ping", occurred_at=START,
                            units=Decimal(1))  # fmt: skip
            assert isinstance(await front.ingest(CustomerLookup(external_id="q"), e, None),
                              UsageAccepted)  # fmt: skip

        async with anyio.create_task_group() as tg:  # concurrent callers, one mailbox
            for n in range(50):
                tg.start_soon(event, n)
        assert len(system.shard("test").event_keys) == 50
        system.shard("test").fail("forced")
        with pytest.raises(ShardUnavailable, match="forced"):
            await front.evaluate("q", "api_calls", None, EvaluationContext(method="GET"))


async def test_a_call_left_in_the_mailbox_when_the_shard_stops_is_answered() -> None:
    """A caller never waits forever: a call still queued when the shard's task ends gets
    ShardStopped."""
    system = build_system(Settings(clock="manual"), ManualClock(START), persistent=False)
    front = QueuedShard(lambda: system.shard("test"))
    outcome: list[str] = []

    async def ask() -> None:
        try:
            await front.create_customer("late", Profile())
        except ShardStopped:
            outcome.append("stopped")

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        while front._receive.statistics().current_buffer_used == 0:
            await anyio.lowlevel.checkpoint()
        with anyio.CancelScope() as scope:
            scope.cancel()  # the shard's task ends before taking the call
            await front.run()
    assert outcome == ["stopped"]
    assert system.shard("test").customer_count() == 0
