"""Segments written in format 1 (before records carried a magic and a position) still recover.

The fixture `fixtures/journal-v1/` was written by the format-1 writer: five records, one
CustomerCreated each, for customers 1..5 (issue 10, item 7: a journal written before the format
change still recovers).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import anyio
import pytest

from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal import (
    Durability,
    FileJournal,
    iter_records,
    read_journal,
    segments,
)

FIXTURE = Path(__file__).parent / "fixtures" / "journal-v1"


def _copy(tmp_path: Path) -> Path:
    directory = tmp_path / "journal"
    shutil.copytree(FIXTURE, directory)
    return directory


def test_a_format_1_segment_still_reads(tmp_path: Path) -> None:
    result = read_journal(_copy(tmp_path))
    assert [r.position for r in result.records] == [1, 2, 3, 4, 5]
    assert [r.customer_id for r in result.records] == [uuid.UUID(int=i) for i in range(1, 6)]
    assert result.last_position == 5


def test_a_format_1_segment_iterates_read_only(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    before = (directory / "journal-00000000000000000001.wal").read_bytes()
    assert [r.position for r in iter_records(directory, after=2, upto=4)] == [3, 4]
    assert (directory / "journal-00000000000000000001.wal").read_bytes() == before


def test_a_format_1_torn_tail_is_truncated_and_damage_before_records_is_refused(
    tmp_path: Path,
) -> None:
    directory = _copy(tmp_path)
    segment = directory / "journal-00000000000000000001.wal"
    intact = segment.read_bytes()
    segment.write_bytes(intact + bytes(4096))  # zero fill: never a format-1 record
    assert [r.position for r in read_journal(directory).records] == [1, 2, 3, 4, 5]
    assert segment.read_bytes() == intact
    damaged = bytearray(intact)
    damaged[60] ^= 0xFF  # inside the first record; four valid records follow
    segment.write_bytes(bytes(damaged))
    with pytest.raises(JournalCorrupt) as refused:
        read_journal(directory)
    assert (refused.value.segment, refused.value.offset) == (segment.name, 32)


@pytest.mark.anyio
async def test_new_records_after_a_format_1_segment_go_to_a_new_format_2_segment(
    tmp_path: Path,
) -> None:
    directory = _copy(tmp_path)
    journal = FileJournal(directory, Durability.FSYNC, next_position=6)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        await journal.wait_durable(journal.append(uuid.UUID(int=6), []))
        tg.cancel_scope.cancel()
    journal.close()
    assert [p.name for p in segments(directory)][-1] == "journal-00000000000000000006.wal"
    assert [r.position for r in read_journal(directory).records] == [1, 2, 3, 4, 5, 6]
