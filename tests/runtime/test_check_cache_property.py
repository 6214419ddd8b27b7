"""A remembered check answer is never stale: two shards run the same random commands on the
same manual clock, one answering repeated checks from the actor's last answer (what
`LocalShard.evaluate` does), the other made to decide every check afresh. Their answers and
their audit records must be identical whatever came between two checks: usage, a payment, a
new subscription, a reservation and its expiry, a catalog change, a new price table, or the
clock crossing a period end, a grace period or a grant's expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anyio
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.config import Settings
from allotment.domain.commands import HoldItem, MarkInvoicePaid, RecordUsage, Reserve, Subscribe
from allotment.domain.decisions import Decision
from allotment.domain.state import InvoiceStatus, Profile
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.wiring import build_system
from tests.conftest import START

GET = EvaluationContext(method="GET")
CUSTOMERS = ("a", "b")
FEATURES = ("api_calls", "ai_chat", "projects", "seats", "auto_one", "unknown")
PLANS = ("free", "starter_monthly", "pro_monthly")
UNPAID = (InvoiceStatus.PENDING, InvoiceStatus.DUE, InvoiceStatus.PAST_DUE)

_customers = st.sampled_from(CUSTOMERS)
_steps = st.lists(
    st.tuples(st.just("check"), _customers, st.sampled_from(FEATURES))
    | st.tuples(
        st.just("usage"),
        _customers,
        st.sampled_from(FEATURES[:2]),
        st.sampled_from([1, 400, 5000, 60000]),
    )
    | st.tuples(st.just("advance"), st.integers(1, 24 * 45))  # hours
    | st.tuples(st.just("pay"), _customers)
    | st.tuples(st.just("subscribe"), _customers, st.sampled_from(PLANS))
    | st.tuples(st.just("reserve"), _customers, st.sampled_from([1, 900]), st.integers(60, 7200))
    | st.tuples(st.just("feature"), _customers)  # an event auto-creates `auto_one` (EVT-21)
    | st.tuples(st.just("prices"), st.integers(1, 9)),
    min_size=1,
    max_size=30,
)


def _shard(clock: ManualClock) -> LocalShard:
    return build_system(Settings(clock="manual"), clock, persistent=False).shard("test")


class _World:
    """One shard and its clock; `fresh` shards forget every remembered answer before a check."""

    def __init__(self, fresh: bool) -> None:
        self.clock = ManualClock(START)
        self.shard = _shard(self.clock)
        self.fresh = fresh
        self.sequence = 0

    async def setup(self) -> None:
        for ref in CUSTOMERS:
            await self.shard.create_customer(ref, Profile(first_name=ref))
            await self.subscribe(ref, "pro_monthly")
            await self.pay(ref)

    async def subscribe(self, ref: str, plan_key: str) -> None:
        plan = self.shard.catalog.plan_by_key(plan_key)
        assert plan is not None
        await self.shard.command(CustomerLookup(external_id=ref), Subscribe(plan_id=plan.id))

    async def pay(self, ref: str) -> None:
        actor = self.shard.find(CustomerLookup(external_id=ref))
        assert actor is not None
        for invoice in list(actor.state.invoices.values()):
            if invoice.status in UNPAID:
                command = MarkInvoicePaid(invoice_id=invoice.id)
                await self.shard.command(CustomerLookup(external_id=ref), command)

    async def usage(self, ref: str, feature: str, units: int) -> None:
        self.sequence += 1
        event = RecordUsage(idempotency_key=f"e{self.sequence}", event_name="x",
                            feature_key=feature, occurred_at=self.clock.now(),
                            units=Decimal(units))  # fmt: skip
        await self.shard.ingest(CustomerLookup(external_id=ref), event, None)

    async def check(self, ref: str, feature: str) -> Decision:
        actor = self.shard.directory.find(CustomerLookup(external_id=ref))
        if self.fresh and actor is not None:  # the checked customer decides afresh
            actor._last_check = None
        return await self.shard.evaluate(ref, feature, None, GET)

    async def step(self, step: tuple[Any, ...]) -> Decision | None:
        match step:
            case ("check", ref, feature):
                return await self.check(ref, feature)
            case ("usage", ref, feature, units):
                await self.usage(ref, feature, units)
            case ("advance", hours):
                self.clock.advance_to(self.clock.now() + timedelta(hours=hours))
            case ("pay", ref):
                await self.pay(ref)
            case ("subscribe", ref, plan_key):
                await self.subscribe(ref, plan_key)
            case ("reserve", ref, units, ttl):
                self.sequence += 1
                hold = (HoldItem(feature_key="api_calls", units=Decimal(units)),)
                command = Reserve(reservation_id=f"r{self.sequence}", items=hold, ttl_seconds=ttl)
                await self.shard.reserve(CustomerLookup(external_id=ref), command)
            case ("feature", ref):
                await self.usage(ref, "auto_one", 1)
            case ("prices", n):
                table = msgspec.structs.replace(self.shard.price_table, as_of=f"2025-02-0{n}")
                await self.shard.replace_prices(table)
        return None


def _comparable(shard: LocalShard) -> list[Any]:
    """The audit records, with the customer named by its reference (ids are random)."""
    return [msgspec.structs.replace(r, customer_id=uuid.UUID(int=0)) for r in shard.audits.drain()]


@settings(max_examples=60, deadline=None)
@given(steps=_steps, watched=st.sampled_from(["api_calls", "ai_chat", "auto_one"]))
def test_remembered_answers_equal_fresh_ones(steps: list[tuple[Any, ...]], watched: str) -> None:
    async def run() -> None:
        remembering, fresh = _World(fresh=False), _World(fresh=True)
        for world in (remembering, fresh):
            await world.setup()
        for step in steps:
            assert await remembering.step(step) == await fresh.step(step), step
            # Every step is followed by a check of each customer the remembering shard may
            # answer from memory (an actor remembers its last check only): each remembered
            # answer then meets whatever the next step changes.
            for ref in CUSTOMERS:
                assert await remembering.check(ref, watched) == await fresh.check(ref, watched)
        assert _comparable(remembering.shard) == _comparable(fresh.shard)

    anyio.run(run)
