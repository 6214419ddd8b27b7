"""The file journal: round trip, group commit, torn tails and mid-journal corruption."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource
from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal import Durability, FileJournal, read_journal, segments

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)


def _fact(i: int) -> CustomerCreated:
    return CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=i), external_id=f"c{i}", source=CustomerSource.API
    )


async def _write(
    directory: Path, count: int, durability: Durability = Durability.FSYNC
) -> FileJournal:
    journal = FileJournal(directory, durability)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)

        async def one(i: int) -> None:
            await journal.wait_durable(journal.append(uuid.UUID(int=i), [_fact(i)]))

        async with anyio.create_task_group() as writers:
            for i in range(1, count + 1):
                writers.start_soon(one, i)
        tg.cancel_scope.cancel()
    journal.close()
    return journal


async def test_records_round_trip_in_order(tmp_path: Path) -> None:
    await _write(tmp_path, 50)
    result = read_journal(tmp_path)
    assert [r.position for r in result.records] == list(range(1, 51))
    assert {r.customer_id for r in result.records} == {uuid.UUID(int=i) for i in range(1, 51)}
    assert all(r.facts == [_fact(r.customer_id.int)] for r in result.records if r.customer_id)


async def test_group_commit_shares_fsyncs_between_concurrent_turns(tmp_path: Path) -> None:
    journal = await _write(tmp_path, 200)
    assert journal.records_committed == 200
    assert journal.commits < 200  # turns that arrived during an fsync shared the next one


async def test_torn_tail_is_truncated_and_earlier_records_survive(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _write(tmp_path, 5)
    segment = segments(tmp_path)[-1]
    intact = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x40\x00\x00\x00\x12\x34")  # a record header promising 64 bytes, then nothing
    result = read_journal(tmp_path)
    assert [r.position for r in result.records] == [1, 2, 3, 4, 5]
    assert segment.stat().st_size == intact
    assert "torn" in caplog.text


async def test_flipped_byte_mid_journal_refuses_to_start(tmp_path: Path) -> None:
    await _write(tmp_path, 5)
    segment = segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    data[40] ^= 0xFF  # inside the first record's payload; four records follow
    segment.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match=segment.name) as refused:
        read_journal(tmp_path)
    assert refused.value.offset == 32  # the first record starts right after the header


async def test_rotation_starts_a_new_segment_and_old_segments_can_go(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path, Durability.WRITE)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        await journal.wait_durable(journal.append(uuid.UUID(int=1), [_fact(1)]))
        before = await journal.rotate()
        await journal.wait_durable(journal.append(uuid.UUID(int=2), [_fact(2)]))
        tg.cancel_scope.cancel()
    assert len(segments(tmp_path)) == 2
    assert journal.delete_segments_before(before) == 1
    assert [r.position for r in read_journal(tmp_path, after=before).records] == [2]
    with pytest.raises(JournalCorrupt, match="starts at 2"):  # without a snapshot: a gap
        read_journal(tmp_path)
    journal.close()
