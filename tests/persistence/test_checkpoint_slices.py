"""A checkpoint encodes customers on the event loop's thread, so it lets requests run whenever
it has held the loop for `storage.SLICE_S` (issue 21: slices of 50 changed customers held it 4
to 18 ms, which every request arriving behind one waited out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from allotment.config import Settings
from allotment.domain.state import CustomerState, Profile
from allotment.persistence import snapshots, storage
from allotment.persistence.compact_state import Keys
from allotment.runtime.clock import ManualClock
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

        async def counted_yield() -> None:
            nonlocal yields
            yields += 1

        monkeypatch.setattr(storage, "chunk_part", counted)
        monkeypatch.setattr(storage, "checkpoint", counted_yield)
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
