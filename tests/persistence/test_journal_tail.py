"""The unexported journal rows kept between reads (persistence/journal_tail.py): every read
gives exactly the rows a fresh decode of the tail gives, while decoding only the records that
became durable since the last read; an export drops what it wrote, and a checkpoint that
deletes segments afterwards changes nothing read (OM-40)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.persistence.history_cursor import cursor, table_dir
from allotment.persistence.history_export import export_history
from allotment.persistence.journal import iter_records
from allotment.persistence.journal_tail import Columns, TailRows
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio


class _Counted:
    """`iter_records` counting the records it decodes."""

    def __init__(self) -> None:
        self.decoded = 0

    def __call__(self, journal: Path, after: int, upto: int) -> Iterator[Any]:
        for record in iter_records(journal, after, upto):
            self.decoded += 1
            yield record


async def _ingest(system: ActorSystem, keys: range) -> int:
    shard = system.shard("test")
    for i in keys:
        event = RecordUsage(idempotency_key=f"t{i}", event_name="ping", occurred_at=START,
                            units=Decimal(i))  # fmt: skip
        await shard.ingest(CustomerLookup(external_id="c"), event, None)
    assert system.storage is not None
    return system.storage.journal("test").durable_position


def _fresh(journal: Path, exported: int, upto: int) -> tuple[int, Columns]:
    return TailRows(journal).rows(lambda: exported, upto)


async def test_reads_equal_a_fresh_decode_and_decode_only_the_new_records(tmp_path: Path) -> None:
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    journal = tmp_path / "journal" / "test"
    events = table_dir(tmp_path, "events")
    counted = _Counted()
    kept = TailRows(journal, counted)
    async with system.running():
        upto = await _ingest(system, range(5))
        first = kept.rows(lambda: cursor(events, "test"), upto)
        assert first == _fresh(journal, 0, upto) and len(first[1]["idempotency_key"]) == 5
        decoded = counted.decoded

        upto_2 = await _ingest(system, range(5, 8))
        second = kept.rows(lambda: cursor(events, "test"), upto_2)
        assert second == _fresh(journal, 0, upto_2)
        assert counted.decoded - decoded == upto_2 - upto  # only the new records
        assert second[1]["idempotency_key"][-3:] == ["t5", "t6", "t7"]

        export_history(tmp_path, "test", upto)  # the first five go to Parquet
        upto_3 = await _ingest(system, range(8, 9))
        third = kept.rows(lambda: cursor(events, "test"), upto_3)
        assert third[0] == upto and third == _fresh(journal, upto, upto_3)
        assert third[1]["idempotency_key"] == ["t5", "t6", "t7", "t8"]

        await system.checkpoint_all()  # may delete the exported segments: nothing read changes
        assert kept.rows(lambda: cursor(events, "test"), upto_3) == third
        assert kept.rows(lambda: cursor(events, "test"), upto) == third  # never goes back


async def test_an_export_past_the_kept_rows_reads_afresh(tmp_path: Path) -> None:
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    journal = tmp_path / "journal" / "test"
    events = table_dir(tmp_path, "events")
    kept = TailRows(journal)
    async with system.running():
        upto = await _ingest(system, range(3))
        kept.rows(lambda: cursor(events, "test"), upto)
        upto_2 = await _ingest(system, range(3, 6))
        export_history(tmp_path, "test", upto_2)  # past what was kept
        await system.checkpoint_all()
        upto_3 = await _ingest(system, range(6, 7))
        read = kept.rows(lambda: cursor(events, "test"), upto_3)
        assert read == _fresh(journal, upto_2, upto_3)
        assert read[1]["idempotency_key"] == ["t6"]
