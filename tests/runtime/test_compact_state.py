"""Compact customer state (issue 21, items 1 and 2).

The differential test drives the same Hypothesis-generated commands through a shard whose
warm set holds one customer (so nearly every turn decodes a stored customer and evicts
another, encoding it when changed) and through one that never evicts, and asserts identical
replies and identical states, which are what the analytics rows are projected from."""

from __future__ import annotations

import shutil
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotment.config import Settings
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.evolve import new_customer
from allotment.domain.facts import CustomerCreated
from allotment.domain.replies import Subscribed
from allotment.domain.state import CustomerSource, CustomerState, Profile
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.memory import MemoryJournal
from allotment.runtime.clock import ManualClock
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

REFS = ("c0", "c1", "c2", "c3")
FEATURES = ("api_calls", "ai_chat", "storage_gb", "seats")
PLANS = ("usage_monthly", "pro_monthly", "starter_monthly")

_create = st.tuples(st.just("create"), st.sampled_from(REFS))
_subscribe = st.tuples(st.just("subscribe"), st.sampled_from(REFS), st.sampled_from(PLANS))
_pay = st.tuples(st.just("pay"), st.sampled_from(REFS))
_ingest = st.tuples(
    st.just("ingest"), st.sampled_from(REFS), st.sampled_from(FEATURES), st.integers(1, 500)
)
_check = st.tuples(st.just("check"), st.sampled_from(REFS), st.sampled_from(FEATURES))
_advance = st.tuples(st.just("advance"), st.integers(1, 40))
COMMANDS = st.lists(
    st.one_of(_create, _subscribe, _pay, _ingest, _check, _advance), min_size=1, max_size=40
)


def _system(warm_max: int) -> ActorSystem:
    counter = iter(range(1, 1 << 62))
    clock = ManualClock(START)
    return ActorSystem(
        catalog=load_catalog(None, clock.now()),
        clock=clock,
        prices=load_price_table(None),
        settings=Settings(clock="manual", warm_customers_max=warm_max),
        journal_factory=lambda _environment: MemoryJournal(keep=False),
        new_id=lambda: uuid.UUID(int=next(counter)),
    )


async def _step(system: ActorSystem, shard: LocalShard, command: tuple[Any, ...]) -> Any:
    kind, *args = command
    if kind == "advance":
        assert isinstance(system.clock, ManualClock)
        system.clock.advance_to(system.clock.now() + timedelta(days=args[0]))
        return await shard.run_due()
    lookup = CustomerLookup(external_id=args[0])
    if kind == "create":
        return await shard.create_customer(args[0], Profile(email=f"{args[0]}@example.com"))
    if shard.directory.find(lookup) is None:
        return None
    return await _on_customer(shard, lookup, kind, args)


async def _on_customer(
    shard: LocalShard, lookup: CustomerLookup, kind: str, args: list[Any]
) -> Any:
    if kind == "subscribe":
        plan = shard.catalog.plan_by_key(args[1])
        return None if plan is None else await shard.command(lookup, Subscribe(plan_id=plan.id))
    if kind == "pay":
        state = shard.directory.find(lookup)
        assert state is not None
        due = [i.id for i in state.state.invoices.values() if i.status == "DUE"]
        return await shard.command(lookup, MarkInvoicePaid(invoice_id=due[0])) if due else None
    if kind == "ingest":
        event = RecordUsage(
            idempotency_key=f"k{shard.turns.turns_run}",
            event_name=args[1],
            feature_key=args[1],
            occurred_at=shard.now(),
            units=Decimal(args[2]),
        )
        return await shard.ingest(lookup, event, None)
    return await shard.evaluate(args[0], args[1], None, EvaluationContext(method="GET"))


async def _drive(warm_max: int, commands: list[tuple[Any, ...]]) -> tuple[list[bytes], bytes]:
    system = _system(warm_max)
    shard = system.shard("test")
    for ref in REFS[:2]:  # most commands find a customer to act on
        await _step(system, shard, ("create", ref))
    replies = [msgspec.json.encode(await _step(system, shard, c)) for c in commands]
    assert shard.directory.warm <= max(warm_max, 1) + 1  # held ones may wait one round
    return replies, msgspec.json.encode(shard.states())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS)
def test_compact_state_answers_as_the_object_state(commands: list[tuple[Any, ...]]) -> None:
    compact = anyio.run(_drive, 1, commands)
    whole = anyio.run(_drive, 1_000_000, commands)
    assert compact == whole


def test_a_warm_set_of_one_keeps_every_customer_stored(tmp_path: Path) -> None:
    commands: list[tuple[Any, ...]] = [("create", r) for r in REFS]
    commands += [("subscribe", r, "pro_monthly") for r in REFS]
    commands += [("check", r, "api_calls") for r in REFS]

    async def run() -> None:
        system = _system(1)
        shard = system.shard("test")
        for command in commands:
            reply = await _step(system, shard, command)
            if command[0] == "subscribe":
                assert isinstance(reply, Subscribed), reply
        assert len(shard.directory) == len(REFS) and shard.directory.warm == 1

    anyio.run(run)


def _durable(data_dir: Path, clock: ManualClock) -> ActorSystem:
    return build_system(Settings(data_dir=data_dir, clock="manual"), clock)


def _invoices(shard: LocalShard) -> list[tuple[Any, ...]]:
    """What the renewals made, without their (random) ids."""
    return [
        (s.external_id, i.type, i.status, i.amount, i.period_start)
        for s in shard.states()
        for i in s.invoices.values()
    ]


@pytest.mark.anyio
async def test_lazy_recovery_serves_as_if_every_customer_were_decoded(tmp_path: Path) -> None:
    """Recovery loads the snapshot's index and stored forms and decodes only the customers
    the journal's tail names; a touch then, and a timer falling due then, answer exactly as
    a recovery that decoded every customer."""
    origin = tmp_path / "origin"
    system = _durable(origin, ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        plan = shard.catalog.plan_by_key("usage_monthly")
        assert plan is not None
        for ref in REFS:
            await shard.create_customer(ref, Profile(first_name="C"))
            await shard.command(CustomerLookup(external_id=ref), Subscribe(plan_id=plan.id))
        await system.checkpoint_all()
        await _step(system, shard, ("ingest", "c1", "api_calls", 7))  # in the journal's tail
        expected = await _step(system, shard, ("check", "c0", "api_calls"))
    outcomes = []
    for decode_all in (False, True):
        clock = ManualClock(START)
        copy = tmp_path / f"decode-all-{decode_all}"  # each restart from the same disk
        shutil.copytree(origin, copy)
        restarted = _durable(copy, clock)
        async with restarted.running():
            shard = restarted.shard("test")
            assert len(shard.directory) == len(REFS)
            assert shard.directory.warm == 1  # c1 only, which the journal's tail names
            if decode_all:
                for ref in REFS:
                    shard.directory.find(CustomerLookup(external_id=ref))
                assert shard.directory.warm == len(REFS)
            assert await _step(restarted, shard, ("check", "c0", "api_calls")) == expected
            clock.advance_to(START + timedelta(days=40))  # every period ends: renewals
            assert await shard.run_due() == len(REFS)
            outcomes.append(_invoices(shard))
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) > len(REFS)


def _created(n: int) -> CustomerState:
    customer = CustomerCreated(
        at=START, customer_id=uuid.UUID(int=n), external_id=f"c{n}", source=CustomerSource.API
    )
    return new_customer(customer)


def test_an_actor_something_holds_is_never_put_back() -> None:
    """A turn awaiting the disk holds its actor: were it evicted, the next touch would decode
    a second actor of the same customer, and the first one's later reads would go stale."""
    directory = CustomerDirectory(warm_max=1)
    held = directory.register(_created(0))
    directory.register(_created(1))  # over the bound, but c0 is held: c1 waits its turn
    assert directory.warm == 2
    assert directory.find(CustomerLookup(external_id="c0")) is held
    del held
    directory.register(_created(2))  # now both older ones go back
    assert directory.warm == 1
    again = directory.find(CustomerLookup(external_id="c0"))
    assert again is not None and again.state == _created(0)
