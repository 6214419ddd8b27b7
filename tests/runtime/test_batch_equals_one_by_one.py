"""Batch equals one by one (issue 21, item 4): a batch of events through `ingest_batch` gives
the same replies, the same facts for every customer and the environment, the same checks and
the same idempotency index as the same events sent one at a time, in order, to a twin shard.

Hypothesis draws the history both shards see first and the batch: duplicate keys within the
batch and against the history, unknown customers (by id), invalid reference ids, unknown
feature ids, auto-created customers and features, units that cross the free plan's maxUsage
and exhaust the starter plan's credits, and a clock moved past the period end so the batch's
first turns catch up (invoices numbered, credits renewed). Ids come from a counter, so both
shards mint the same ones; the only difference allowed is how facts are grouped in records.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

import anyio
from hypothesis import example, given, settings
from hypothesis import strategies as st

from allotment.config import DEFAULT_CATALOG, DEFAULT_MODEL_PRICES, Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Reply, Subscribed
from allotment.domain.state import Profile
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.memory import MemoryJournal
from allotment.runtime.clock import ManualClock
from allotment.runtime.ingestion import Event
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from tests.conftest import START

PLANS = {"c0": "free", "c1": "starter_monthly", "c3": "starter_monthly"}  # c2 has no plan
CUSTOMERS = ("c0", "c1", "c2", "c3")
FEATURES = ("api_calls", "ai_chat", "projects", "fresh_feature", None)
UNITS = tuple(Decimal(u) for u in ("1", "0.5", "300", "999", "5000", "60000"))
UNKNOWN_ID = uuid.UUID(int=2**100)
Drawn = tuple[str, str | None, bool, Decimal, str]  # who, feature, by unknown id, units, key


@st.composite
def events(draw: st.DrawFn) -> Drawn:
    """(who, feature key, by unknown feature id, units, key): `who` is a reference id, or
    `id:` (an unknown customer id), or `bad ref` (not a valid reference id)."""
    who = draw(st.sampled_from((*CUSTOMERS, "new1", "new2", "id:", "bad ref")))
    feature = draw(st.sampled_from(FEATURES))
    by_unknown_id = draw(st.booleans()) and draw(st.booleans())
    units = draw(st.sampled_from(UNITS))
    key = f"k{draw(st.integers(min_value=0, max_value=12))}"  # few keys: duplicates
    return who, feature, by_unknown_id, units, key


def _system() -> ActorSystem:
    ids = itertools.count(1)
    return ActorSystem(
        catalog=load_catalog(DEFAULT_CATALOG, START),
        clock=ManualClock(START),
        prices=load_price_table(DEFAULT_MODEL_PRICES),
        settings=Settings(),
        journal_factory=lambda _env: MemoryJournal(),
        new_id=lambda: uuid.UUID(int=next(ids)),
    )


async def _prepare(shard: LocalShard) -> None:
    for ref in CUSTOMERS:
        await shard.create_customer(ref, Profile(first_name=ref))
    for ref, key in PLANS.items():
        plan = shard.catalog.plan_by_key(key)
        assert plan is not None
        lookup = CustomerLookup(external_id=ref)
        reply = await shard.command(lookup, Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed)
        if reply.invoice is not None:  # paid, so the starter plan's credits are granted
            await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))


def _event(shard: LocalShard, drawn: Drawn) -> Event:
    who, feature, by_unknown_id, units, key = drawn
    lookup = (
        CustomerLookup(customer_id=UNKNOWN_ID) if who == "id:" else CustomerLookup(external_id=who)
    )
    command = RecordUsage(
        idempotency_key=key,
        event_name="usage",
        occurred_at=shard.now(),
        units=units,
        feature_key=None if by_unknown_id else feature,
    )
    return lookup, command, UNKNOWN_ID if by_unknown_id else None


def _facts_by_owner(journal: MemoryJournal) -> dict[uuid.UUID | None, list[object]]:
    """Each customer's facts in order, and the environment's (owner None): what must agree;
    the records they came in may differ."""
    owners: dict[uuid.UUID | None, list[object]] = {}
    for record in journal.records:
        owners.setdefault(record.customer_id, []).extend(record.facts)
        owners.setdefault(None, []).extend(record.catalog)
    return owners


async def _checks(shard: LocalShard) -> list[Reply]:
    audit = EvaluationContext(method="GET")
    return [
        await shard.evaluate(ref, feature, None, audit)
        for ref in (*CUSTOMERS, "new1", "new2")
        for feature in FEATURES
        if feature is not None
    ]


async def _run(
    history: list[Drawn],
    batch: list[Drawn],
    period_ends: bool,
) -> None:
    systems = _system(), _system()
    shards = systems[0].shard("test"), systems[1].shard("test")
    for system, shard in zip(systems, shards, strict=True):
        await _prepare(shard)
        for drawn in history:
            await shard.ingest(*_event(shard, drawn))
        if period_ends:
            clock = system.clock
            assert isinstance(clock, ManualClock)
            clock.advance_to(START + timedelta(days=32))
    singles = [await shards[0].ingest(*_event(shards[0], drawn)) for drawn in batch]
    batched = await shards[1].ingest_batch([_event(shards[1], drawn) for drawn in batch])
    assert batched == singles
    journals = [shard.journal for shard in shards]
    assert isinstance(journals[0], MemoryJournal) and isinstance(journals[1], MemoryJournal)
    assert _facts_by_owner(journals[1]) == _facts_by_owner(journals[0])
    assert journals[1].position <= journals[0].position  # at most one record per customer...
    assert shards[1].catalog == shards[0].catalog
    assert await _checks(shards[1]) == await _checks(shards[0])
    keys = {f"k{n}" for n in range(13)}
    claimed = [[shard.event_keys.reserve(key, shard.now()) for key in sorted(keys)]
               for shard in shards]  # fmt: skip
    assert claimed[1] == claimed[0]


# The period ends before the batch: c1's first turn numbers its invoice, its next is refused
# (credits exhausted) with nothing applied, then c3's catch-up numbers the next invoice (CN-21).
NUMBERED: list[Drawn] = [
    ("c1", "ai_chat", False, Decimal(60000), "k1"),
    ("c1", "ai_chat", False, Decimal(60000), "k2"),
    ("c3", "api_calls", False, Decimal(1), "k3"),
]


@settings(max_examples=120, deadline=None)
@example(history=[], batch=NUMBERED, period_ends=True)
@given(
    history=st.lists(events(), max_size=8),
    batch=st.lists(events(), min_size=1, max_size=40),
    period_ends=st.booleans(),
)
def test_a_batch_equals_its_events_one_by_one(
    history: list[Drawn],
    batch: list[Drawn],
    period_ends: bool,
) -> None:
    anyio.run(_run, history, batch, period_ends)


def test_a_long_batch_equals_its_events_one_by_one_across_stretches() -> None:
    """250 events: three stretches of the batch, each journalled before the next."""
    drawn: list[Drawn] = [
        (("c0", "c1", "new1")[i % 3], "api_calls", False, Decimal(7), f"long{i % 240}")
        for i in range(250)
    ]
    anyio.run(_run, [], drawn, False)
