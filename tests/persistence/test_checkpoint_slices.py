"""A checkpoint encodes customers on the event loop's thread, so it lets requests run whenever
it has held the loop for `storage.SLICE_S` (issue 21: slices of 50 changed customers held it 4
to 18 ms, which every request arriving behind one waited out)."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.replies import UsageAccepted
from allotment.domain.state import CustomerState, Profile
from allotment.persistence import snapshots, storage
from allotment.persistence.compact_state import Keys
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio

CUSTOMERS = 7


async def _yields_while_checkpointing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        for i in range(CUSTOMERS):
            await shard.create_customer(f"c{i}", Profile(first_name="A"))
        parts = 0
        original = snapshots.chunk_part

        def counted(customer: bytes | CustomerState) -> tuple[bytes, Keys]:
            nonlocal parts
            parts += 1
            return original(customer)

        yields = 0

        async def counted_yield(seconds: float) -> None:
            nonlocal yields
            yields += 1
            await anyio.lowlevel.checkpoint()

        monkeypatch.setattr(storage, "chunk_part", counted)
        monkeypatch.setattr(storage, "_rest", counted_yield)
        report = (await system.checkpoint_all())[0]
        assert report.customers == CUSTOMERS and parts == CUSTOMERS
        return yields


async def test_a_checkpoint_past_its_slice_yields_after_every_customer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "SLICE_S", 0.0)  # every step is past the slice
    yields = await _yields_while_checkpointing(tmp_path, monkeypatch)
    assert yields >= CUSTOMERS  # one chunk of 50 holds all 7: a yield per chunk would be 1


async def test_a_checkpoint_within_its_slice_does_not_yield(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "SLICE_S", 3600.0)
    assert await _yields_while_checkpointing(tmp_path, monkeypatch) == 0


async def test_customers_changed_or_created_while_encoded_recover_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint takes each customer as it is when it reaches it, not all at once (holding
    the loop while it copied 100k took 85 ms): events for customers already encoded and for
    ones not yet, and customers created meanwhile, all recover as the live shard had them."""
    monkeypatch.setattr(storage, "SLICE_S", 0.0)  # requests run between every two customers
    clock = ManualClock(START)
    settings = Settings(data_dir=tmp_path, clock="manual")
    system = build_system(settings, clock)
    async with system.running():
        shard = system.shard("test")
        for i in range(120):
            await shard.create_customer(f"c{i}", Profile(first_name="C"))
        done = anyio.Event()

        async def checkpoint() -> None:
            await system.checkpoint_all()
            done.set()

        sent = 0
        async with anyio.create_task_group() as tg:
            tg.start_soon(checkpoint)
            while not done.is_set():
                lookup = CustomerLookup(external_id=f"c{(sent * 37) % 130}")  # c120+: created
                event = RecordUsage(
                    idempotency_key=f"e{sent}", event_name="ping", occurred_at=clock.now()
                )
                assert isinstance(await shard.ingest(lookup, event, None), UsageAccepted)
                sent += 1
        assert sent >= 10  # events landed while the checkpoint went through the customers
        live = [msgspec.msgpack.encode(state) for state in shard.states()]
    restarted = build_system(settings, clock)
    async with restarted.running():
        recovered = [msgspec.msgpack.encode(state) for state in restarted.shard("test").states()]
    assert recovered == live
