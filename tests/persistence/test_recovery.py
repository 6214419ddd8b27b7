"""Recovery reproduces state exactly: latest snapshot + journal tail == the live state, and
idempotency survives a restart (a retried event is still a 409)."""

from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import anyio.lowlevel
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.config import Settings
from allotment.domain.catalog import Feature, feature_id
from allotment.domain.catalog_facts import CatalogUpdated
from allotment.domain.commands import (
    GrantCredits,
    LinkStripeCustomer,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.decide import decide as real_decide
from allotment.domain.facts import UsageRecorded
from allotment.domain.replies import Rejected, Subscribed, UsageAccepted
from allotment.domain.state import Profile
from allotment.persistence import snapshots
from allotment.persistence.compact_state import decode_state
from allotment.persistence.faults import FaultyIO
from allotment.persistence.journal import iter_records
from allotment.runtime import actor as actor_module
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.idempotency import TABLES, key_digest
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


def _system(
    data_dir: Path, clock: ManualClock, durability: str = "fsync", journal_io: Any = None
) -> ActorSystem:
    settings = Settings(data_dir=data_dir, clock="manual", durability=durability)  # type: ignore[arg-type]
    return build_system(settings, clock, journal_io=journal_io)


def _picture(shard: LocalShard) -> dict[str, Any]:
    return {
        "customers": sorted(msgspec.msgpack.encode(s) for s in shard.states()),
        "catalog": msgspec.msgpack.encode(shard.catalog),
        "keys": len(shard.event_keys),
    }


async def _step(shard: LocalShard, clock: ManualClock, kind: str, n: int, i: int) -> None:
    ref = f"c{n % 4}"
    lookup = CustomerLookup(external_id=ref)
    if kind == "customer":
        await shard.create_customer(ref, Profile(first_name="A"))
    elif kind == "subscribe":
        plan = ["pro_monthly", "usage_monthly", "free"][n % 3]
        reply = await shard.command(lookup, Subscribe(plan_id=shard.catalog.plan_by_key(plan).id))  # type: ignore[union-attr]
        if isinstance(reply, Subscribed):
            await shard.command_on_owner(
                reply.invoice.id, MarkInvoicePaid(invoice_id=reply.invoice.id), "x"
            )
    elif kind == "event":
        event = RecordUsage(
            idempotency_key=f"k{i}",
            event_name="api_calls",
            feature_key=["api_calls", "ai_chat", f"new_{n % 2}"][n % 3],
            occurred_at=clock.now(),
            units=Decimal(n * 100),
        )
        await shard.ingest(lookup, event, None)
    elif kind == "grant":
        await shard.command(
            lookup,
            GrantCredits(
                denomination="TOKENS",
                amount=Decimal(n + 1),
                source=GrantSource.PROMOTION,
                expires_at=clock.now() + timedelta(days=n + 1),
            ),
        )
    elif kind == "catalog":
        feature = Feature(id=feature_id(f"f{n}"), key=f"f{n}", name=f"Feature {n}")
        await shard.upsert_catalog(CatalogUpdated(at=clock.now(), features=(feature,)))
    else:
        clock.advance_to(clock.now() + timedelta(days=n))
        await shard.run_due()


steps = st.lists(
    st.tuples(
        st.sampled_from(["customer", "subscribe", "event", "event", "grant", "catalog", "wait"]),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=25,
)


class Faults:
    """The workload's hostile steps (issue 10): rejected events, `decide` raising after
    catch-up, and journal writes that fail, each followed by what a server would do."""

    def __init__(self, system: ActorSystem, disk: FaultyIO, clock: ManualClock) -> None:
        self.system, self.disk, self.clock = system, disk, clock
        self.acked: set[str] = set()

    def decide(self, state: Any, command: Any, ctx: Any) -> Any:
        if isinstance(command, RecordUsage) and command.event_name == "explode":
            raise RuntimeError("a bug in decide")
        return real_decide(state, command, ctx)

    async def event(self, n: int, i: int, **fields: Any) -> None:
        event = RecordUsage(
            idempotency_key=f"k{i}", occurred_at=self.clock.now(), units=Decimal(n + 1),
            **{"event_name": "api_calls", "feature_key": "api_calls", **fields},
        )  # fmt: skip
        shard = self.system.shard("test")
        try:
            reply = await shard.ingest(CustomerLookup(external_id=f"c{n % 4}"), event, None)
        except (RuntimeError, ShardUnavailable):
            return
        if isinstance(reply, UsageAccepted):
            self.acked.add(event.idempotency_key)

    async def step(self, kind: str, n: int, i: int) -> bool:
        """Run a hostile step; False when `kind` is an ordinary one."""
        if kind == "event":  # as _step's, but counted when acknowledged
            await self.event(n, i, feature_key=["api_calls", "ai_chat", f"new_{n % 2}"][n % 3])
        elif kind == "idle":  # time passes, and no sweep runs: the next turn catches up
            self.clock.advance_to(self.clock.now() + timedelta(days=n))
        elif kind == "reject":  # after time passed unswept, so catch-up precedes the 400
            self.clock.advance_to(self.clock.now() + timedelta(days=n))
            await self.event(n, i, invoice_id=uuid.UUID(int=n))  # not this customer's
        elif kind == "explode":  # likewise, before `decide` raises
            self.clock.advance_to(self.clock.now() + timedelta(days=n))
            await self.event(n, i, event_name="explode")
        elif kind == "fault":
            self.system.shard("test")  # opened (its segment header written) before the fault
            self.disk.fail_writes(1)
            await self.event(n, i)
            if self.system.shard("test").failure is not None:
                assert await self.system.rebuild("test")
        else:
            return False
        return True


def _journalled_keys(data_dir: Path) -> list[str]:
    return [
        fact.idempotency_key
        for record in iter_records(data_dir / "journal" / "test")
        for fact in record.facts
        if isinstance(fact, UsageRecorded)
    ]


steps_with_faults = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "customer",
                "subscribe",
                "event",
                "event",
                "grant",
                "catalog",
                "wait",
                "idle",
                "reject",
                "explode",
                "fault",
            ]
        ),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None)
@given(steps_with_faults, st.integers(0, 30))
def test_snapshot_plus_tail_recovers_the_live_state(
    workload: list[tuple[str, int]], cut: int
) -> None:
    """Whatever the workload did, rebuilding from the journal gives the live state, and every
    acknowledged event is in the journal exactly once (and nothing refused is)."""

    async def run() -> None:
        with tempfile.TemporaryDirectory() as directory:
            data_dir = Path(directory)
            clock = ManualClock(START)
            disk = FaultyIO()
            system = _system(data_dir, clock, durability="write", journal_io=disk)
            faults = Faults(system, disk, clock)
            with mock.patch.object(actor_module, "decide", faults.decide):
                async with system.running():
                    shard = system.shard("test")  # catalog stamped now, as a server's at start
                    for n, kind in ((0, "customer"), (0, "subscribe"), (1, "customer"),
                                    (1, "subscribe")):  # fmt: skip
                        await _step(shard, clock, kind, n, -1)  # subscribers for catch-up
                    for i, (kind, n) in enumerate(workload):
                        if i == cut % len(workload):
                            await system.checkpoint_all()
                        if not await faults.step(kind, n, i):
                            await _step(system.shard("test"), clock, kind, n, i)
                    live = _picture(system.shard("test"))
            recovered = _system(data_dir, clock, durability="write")
            assert _picture(recovered.shard("test")) == live
            keys = [k for k in _journalled_keys(data_dir) if k.startswith("k")]
            assert sorted(keys) == sorted(faults.acked)  # each acknowledged event exactly once

    anyio.run(run)


async def test_a_retried_event_after_restart_is_still_a_duplicate(tmp_path: Path) -> None:
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        event = RecordUsage(idempotency_key="once", event_name="ping", occurred_at=clock.now())
        assert isinstance(
            await shard.ingest(CustomerLookup(external_id="u"), event, None), UsageAccepted
        )
        await system.checkpoint_all()
        second = RecordUsage(idempotency_key="twice", event_name="ping", occurred_at=clock.now())
        assert isinstance(
            await shard.ingest(CustomerLookup(external_id="u"), second, None), UsageAccepted
        )
    restarted = _system(tmp_path, clock)
    async with restarted.running():
        shard = restarted.shard("test")
        for key in ("once", "twice"):  # one from the snapshot, one from the journal tail
            retry = RecordUsage(idempotency_key=key, event_name="ping", occurred_at=clock.now())
            reply = await shard.ingest(CustomerLookup(external_id="u"), retry, None)
            assert isinstance(reply, Rejected) and reply.kind == "conflict"
        assert restarted.storage is not None
        report = restarted.storage.recoveries[0]
        assert report.snapshot_position > 0 and report.records_replayed >= 1


def test_recovery_works_outside_an_event_loop(tmp_path: Path) -> None:
    """Regression: the journal made anyio events in its constructor, which needs a running
    loop, so recovering a data dir from plain synchronous code failed."""

    async def write() -> None:
        system = _system(tmp_path, ManualClock(START))
        async with system.running():
            await system.shard("test").create_customer("sync", Profile(first_name="S"))

    anyio.run(write)
    recovered = _system(tmp_path, ManualClock(START))  # no loop here
    assert recovered.shard("test").customer_count() == 1


async def test_a_damaged_newest_snapshot_falls_back_without_losing_changes(tmp_path: Path) -> None:
    """Segments are kept back to the oldest kept snapshot, so the fallback can replay."""
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        for i in range(3):
            await shard.ingest(
                CustomerLookup(external_id="u"),
                RecordUsage(idempotency_key=f"a{i}", event_name="ping", occurred_at=clock.now()),
                None,
            )
            await system.checkpoint_all()
        live = _picture(shard)
    newest = sorted((tmp_path / "snapshots" / "test").glob("snapshot-*.snap"))[-1]
    data = bytearray(newest.read_bytes())
    data[-10] ^= 0xFF
    newest.write_bytes(bytes(data))
    recovered = _system(tmp_path, clock)
    assert _picture(recovered.shard("test")) == live


async def test_stripe_linked_customers_are_found_by_stripe_id_after_restart(tmp_path: Path) -> None:
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        await shard.create_customer("s", Profile(first_name="S"))
        await shard.command(
            CustomerLookup(external_id="s"), LinkStripeCustomer(stripe_customer_id="cus_123")
        )
    restarted = _system(tmp_path, clock)
    async with restarted.running():
        shard = restarted.shard("test")
        event = RecordUsage(idempotency_key="by-stripe", event_name="ping", occurred_at=clock.now())
        reply = await shard.ingest(CustomerLookup(stripe_customer_id="cus_123"), event, None)
        assert isinstance(reply, UsageAccepted) and reply.message is None  # not auto-created
        assert shard.customer_count() == 1


async def test_keys_accepted_during_a_checkpoint_survive_a_restart(tmp_path: Path) -> None:
    """Regression: an event accepted while customers were being encoded was in the customer's
    snapshot but not in the snapshot's key list, and replay skipped its record."""
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    keys: list[str] = []
    async with system.running():
        shard = system.shard("test")
        for i in range(400):
            await shard.create_customer(f"c{i}", Profile(first_name="C"))
        done = anyio.Event()

        async def checkpoint() -> None:
            await system.checkpoint_all()
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(checkpoint)
            while not done.is_set():  # some of these land between key export and c399's slice
                key = f"mid{len(keys)}"
                event = RecordUsage(idempotency_key=key, event_name="ping", occurred_at=clock.now())
                assert isinstance(
                    await shard.ingest(CustomerLookup(external_id="c399"), event, None),
                    UsageAccepted,
                )
                keys.append(key)
                await anyio.lowlevel.checkpoint()
    assert keys
    restarted = _system(tmp_path, clock)
    async with restarted.running():
        shard = restarted.shard("test")
        for key in keys:
            retry = RecordUsage(idempotency_key=key, event_name="ping", occurred_at=clock.now())
            reply = await shard.ingest(CustomerLookup(external_id="c399"), retry, None)
            assert isinstance(reply, Rejected) and reply.kind == "conflict", key


async def test_a_version_1_snapshot_with_keys_by_day_still_recovers(tmp_path: Path) -> None:
    """Snapshots written before keys were packed (version 1) keep their duplicates (EVT-38)."""
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    async with system.running():
        shard = system.shard("test")
        event = RecordUsage(idempotency_key="old", event_name="ping", occurred_at=clock.now())
        await shard.ingest(CustomerLookup(external_id="u"), event, None)
        await system.checkpoint_all()
    path = max((tmp_path / "snapshots" / "test").glob("snapshot-*.snap"))
    loaded = snapshots.load_latest(path.parent)
    assert loaded is not None and loaded.header.key_tables == TABLES
    header = msgspec.structs.replace(
        loaded.header,
        key_tables=0,
        key_slots_used=[],
        keys_per_day={},
        event_keys={START.date(): [key_digest("old")]},
    )
    version_1 = [snapshots._PREFIX.pack(snapshots.MAGIC, 1), *snapshots.header_frame(header)]
    states = [decode_state(stored) for stored in loaded.stored.forms]  # version 1: decoded states
    version_1 += snapshots.frame(msgspec.msgpack.encode(states))
    path.write_bytes(b"".join(version_1))
    restarted = _system(tmp_path, clock)
    async with restarted.running():
        retry = RecordUsage(idempotency_key="old", event_name="ping", occurred_at=clock.now())
        reply = await restarted.shard("test").ingest(CustomerLookup(external_id="u"), retry, None)
        assert isinstance(reply, Rejected) and reply.kind == "conflict"
