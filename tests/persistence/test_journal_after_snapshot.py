"""Recovery reads only what its snapshot does not hold (docs/internals.md, "Recovery"): closed
segments wholly at or before the snapshot are not opened, and the records up to the snapshot
in the others are checked but not decoded. What follows the snapshot is read as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource
from allotment.persistence import journal_format
from allotment.persistence.codec import decode_record
from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal import Durability, FileJournal, read_journal, segments

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)


def _fact(i: int) -> CustomerCreated:
    return CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=i), external_id=f"c{i}", source=CustomerSource.API
    )


async def _three_segments(directory: Path) -> None:
    """Positions 1-3, 4-6 and 7-9, one segment each."""
    journal = FileJournal(directory, Durability.WRITE)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        for i in range(1, 10):
            await journal.wait_durable(journal.append(uuid.UUID(int=i), [_fact(i)]))
            if i in (3, 6):
                await journal.rotate()
        tg.cancel_scope.cancel()
    journal.close()
    assert len(segments(directory)) == 3


def _flip(segment: Path, offset: int) -> None:
    data = bytearray(segment.read_bytes())
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))


@pytest.mark.parametrize("after", range(10))
async def test_the_tail_after_any_snapshot_position_is_the_records_after_it(
    tmp_path: Path, after: int
) -> None:
    await _three_segments(tmp_path)
    result = read_journal(tmp_path, after=after)
    assert [r.position for r in result.records] == list(range(after + 1, 10))
    assert [r.facts for r in result.records] == [[_fact(i)] for i in range(after + 1, 10)]
    assert result.last_position == 9


async def test_damage_in_a_closed_segment_the_snapshot_holds_does_not_stop_recovery(
    tmp_path: Path,
) -> None:
    await _three_segments(tmp_path)
    first = segments(tmp_path)[0]
    _flip(first, 40)  # inside position 1's payload: records 2 and 3 follow
    assert [r.position for r in read_journal(tmp_path, after=3).records] == [4, 5, 6, 7, 8, 9]
    with pytest.raises(JournalCorrupt, match=first.name):  # without the snapshot it is needed
        read_journal(tmp_path, after=2)


async def test_records_up_to_the_snapshot_are_checked_but_not_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _three_segments(tmp_path)
    decoded: list[int] = []

    def counting(payload: bytes) -> object:
        record = decode_record(payload)
        decoded.append(record.position)
        return record

    monkeypatch.setattr(journal_format, "decode_record", counting)
    assert [r.position for r in read_journal(tmp_path, after=5).records] == [6, 7, 8, 9]
    assert decoded == [6, 7, 8, 9]  # segment 1 is not opened; 4 and 5 are framed only
    _flip(segments(tmp_path)[1], 40)  # position 4's payload: its checksum still catches it
    with pytest.raises(JournalCorrupt, match=segments(tmp_path)[1].name):
        read_journal(tmp_path, after=5)


async def test_a_torn_tail_is_truncated_when_the_snapshot_holds_every_record(
    tmp_path: Path,
) -> None:
    await _three_segments(tmp_path)
    last = segments(tmp_path)[-1]
    intact = last.stat().st_size
    with last.open("ab") as file:
        file.write(b"\xf7\x4a\x52\xc1\x40\x00")  # a record header cut short
    result = read_journal(tmp_path, after=9)
    assert (result.records, result.last_position) == ([], 9)
    assert last.stat().st_size == intact


async def test_a_missing_segment_after_the_snapshot_is_still_a_gap(tmp_path: Path) -> None:
    await _three_segments(tmp_path)
    segments(tmp_path)[1].unlink()  # positions 4-6
    with pytest.raises(JournalCorrupt, match="position 7 follows 3"):
        read_journal(tmp_path, after=4)
    # With a snapshot through 6, nothing the recovery needs is missing.
    assert [r.position for r in read_journal(tmp_path, after=6).records] == [7, 8, 9]
