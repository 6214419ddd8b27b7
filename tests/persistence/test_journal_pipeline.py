"""The pipelined group commit (issue 21 item 3): the next batch is written while the previous
batch's fsync is in flight, batches become durable strictly in order, and a failure of one
batch fails every batch behind it and is cut back to the last completed fsync.

The disk is real; its fsyncs wait for the test (`GatedIO`), so each step is decided by the
test, not by timing."""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import UTC, datetime
from io import FileIO
from pathlib import Path
from types import FrameType

import anyio
import pytest
from anyio.abc import TaskGroup

from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.faults import FaultyIO
from allotment.persistence.journal import Durability, FileJournal, read_journal, segments
from allotment.persistence.journal_segment import Batch
from tests.waiting import BOUND_S, wait_until_async

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)


def _fact(i: int) -> CustomerCreated:
    return CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=i), external_id=f"c{i}", source=CustomerSource.API
    )


class GatedIO:
    """A `FaultyIO` (the real disk until armed) whose every fsync announces itself and then
    waits until the test releases it; every write attempt announces itself too."""

    def __init__(self) -> None:
        self.faults = FaultyIO()
        self.writes: list[int] = []  # sizes of the writes that reached the disk
        self.fsyncs_entered = 0
        self._write_attempted = threading.Semaphore(0)
        self._fsync_entered = threading.Semaphore(0)
        self._fsync_released = threading.Semaphore(0)

    def journal(self, directory: Path) -> FileJournal:
        """A journal over this disk, its new segment's header already written and forgotten:
        what follows announces the batches only."""
        journal = FileJournal(directory, Durability.FSYNC, io=self)
        assert self._write_attempted.acquire(blocking=False)
        self.writes.clear()
        return journal

    def write(self, file: FileIO, data: bytes) -> None:
        try:
            self.faults.write(file, data)
            self.writes.append(len(data))
        finally:
            self._write_attempted.release()

    def fsync(self, fd: int) -> None:
        self.fsyncs_entered += 1
        self._fsync_entered.release()
        assert self._fsync_released.acquire(timeout=BOUND_S), "the test never released it"
        self.faults.fsync(fd)

    def release_fsync(self) -> None:
        self._fsync_released.release()

    async def write_attempted(self) -> None:
        assert await anyio.to_thread.run_sync(self._write_attempted.acquire, True, BOUND_S)

    async def fsync_entered(self) -> None:
        assert await anyio.to_thread.run_sync(self._fsync_entered.acquire, True, BOUND_S)


class Turns:
    """Records appended in tasks that wait until durable; what each wait ended with."""

    def __init__(self, journal: FileJournal, tg: TaskGroup) -> None:
        self.journal, self.tg = journal, tg
        self.acknowledged: list[int] = []
        self.refused: list[int] = []

    def append(self, i: int) -> int:
        position = self.journal.append(uuid.UUID(int=i), [_fact(i)])
        self.tg.start_soon(self._wait, i, position)
        return position

    async def _wait(self, i: int, position: int) -> None:
        try:
            await self.journal.wait_durable(position)
        except JournalUnavailable:
            self.refused.append(i)
        else:
            self.acknowledged.append(i)


def _read_back(directory: Path) -> list[int]:
    return [r.customer_id.int for r in read_journal(directory).records if r.customer_id]


@pytest.fixture
def gated(tmp_path: Path) -> tuple[GatedIO, FileJournal]:
    io = GatedIO()
    return io, io.journal(tmp_path)


async def _first_record_durable(io: GatedIO, turns: Turns) -> int:
    """Record 1 through a whole commit; returns the segment's size after it."""
    turns.append(1)
    await io.fsync_entered()
    io.release_fsync()
    await turns.journal.wait_durable(1)
    return segments(turns.journal.directory)[-1].stat().st_size


async def test_the_next_batch_is_written_during_the_fsync_and_acknowledged_after_it(
    gated: tuple[GatedIO, FileJournal], tmp_path: Path
) -> None:
    io, journal = gated
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        async with anyio.create_task_group() as waiting:
            turns = Turns(journal, waiting)
            turns.append(1)
            await io.fsync_entered()  # batch 1's fsync is in flight and held
            turns.append(2)
            turns.append(3)
            await io.write_attempted()  # batch 1's write
            await io.write_attempted()  # batch 2 (records 2 and 3), written during that fsync
            assert len(io.writes) == 2
            assert journal.durable_position == 0
            assert turns.acknowledged == []
            io.release_fsync()
            await journal.wait_durable(1)
            await io.fsync_entered()  # batch 2's own fsync, held
            assert journal.durable_position == 1  # batch 1 alone: batch 2's fsync is not done
            assert not {2, 3} & set(turns.acknowledged)
            io.release_fsync()
            await journal.wait_durable(3)
        tg.cancel_scope.cancel()
    assert sorted(turns.acknowledged) == [1, 2, 3]
    assert (journal.commits, journal.records_committed) == (2, 3)
    assert journal.commit_records.count == 2
    io.release_fsync()  # the close's own fsync
    journal.close()
    assert _read_back(tmp_path) == [1, 2, 3]


async def test_a_failed_fsync_fails_the_batch_written_behind_it_and_cuts_both_back(
    gated: tuple[GatedIO, FileJournal], tmp_path: Path
) -> None:
    io, journal = gated
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)  # returns by itself once the journal has failed
        turns = Turns(journal, tg)
        durable_size = await _first_record_durable(io, turns)
        io.faults.fail_fsyncs(1)
        turns.append(2)
        await io.fsync_entered()  # batch 2's fsync, held; it will fail
        turns.append(3)
        await io.write_attempted()  # batch 1's write
        await io.write_attempted()  # batch 2's
        await io.write_attempted()  # batch 3's, behind the held fsync
        assert segments(tmp_path)[-1].stat().st_size > durable_size
        io.release_fsync()
    assert isinstance(journal.failure, OSError)
    assert (turns.acknowledged, sorted(turns.refused)) == ([1], [2, 3])
    assert journal.durable_position == 1
    assert io.fsyncs_entered == 2  # batch 3 was never synced: after a failed fsync, nothing is
    assert journal.pending_bytes == 0
    io.release_fsync()  # the cut back's own fsync
    journal.close_after_failure()
    assert segments(tmp_path)[-1].stat().st_size == durable_size
    assert _read_back(tmp_path) == [1]


async def test_a_failed_write_behind_an_fsync_in_flight_fails_only_what_follows(
    gated: tuple[GatedIO, FileJournal], tmp_path: Path
) -> None:
    """Outcomes are decided in batch order, as if the batches were committed one after the
    other: the batch whose fsync was in flight is on disk and acknowledged; the batch whose
    write failed, and everything after it, is refused and cut."""
    io, journal = gated
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        turns = Turns(journal, tg)
        await _first_record_durable(io, turns)
        turns.append(2)
        await io.write_attempted()  # batch 1's
        await io.write_attempted()  # batch 2's
        await io.fsync_entered()  # batch 2's fsync, held
        io.faults.tear_next_write(5)
        turns.append(3)
        await io.write_attempted()  # batch 3: torn
        assert journal.failure is None  # not before batch 2, in flight ahead of it, is done
        assert journal.durable_position == 1
        io.release_fsync()
    assert isinstance(journal.failure, OSError)
    assert (sorted(turns.acknowledged), turns.refused) == ([1, 2], [3])
    assert journal.durable_position == 2
    io.release_fsync()  # the cut back's own fsync
    journal.close_after_failure()
    assert _read_back(tmp_path) == [1, 2]


async def test_rotations_in_the_pipe_keep_every_record_in_order(tmp_path: Path) -> None:
    journal = FileJournal(tmp_path, Durability.FSYNC, segment_size_max=2048)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        async with anyio.create_task_group() as writers:
            turns = Turns(journal, writers)
            for i in range(1, 201):
                turns.append(i)
                if i % 50 == 0:
                    await journal.rotate()
        tg.cancel_scope.cancel()
    journal.close()
    assert sorted(turns.acknowledged) == list(range(1, 201))
    assert len(segments(tmp_path)) > 4
    assert [r.position for r in read_journal(tmp_path).records] == list(range(1, 201))


def _batches_held_by_threads(name: str) -> list[object]:
    """The batches the journal's threads (named `name`) still hold in their frames."""
    idents = {t.ident for t in threading.enumerate() if t.name == name}
    held: list[object] = []
    for ident, frame in sys._current_frames().items():
        walking: FrameType | None = frame if ident in idents else None
        while walking is not None:
            held += [v for v in walking.f_locals.values() if isinstance(v, Batch)]
            walking = walking.f_back
    return held


@pytest.mark.parametrize("durability", [Durability.FSYNC, Durability.NONE])
async def test_an_idle_journal_keeps_no_batch_alive(tmp_path: Path, durability: Durability) -> None:
    """A batch that rotated once stayed in the syncer's frame while it waited for the next:
    up to the pending bound (64 MB) kept for good on an idle server (issue 21)."""
    journal = FileJournal(tmp_path, durability, segment_size_max=2048)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        for i in range(1, 41):
            position = journal.append(uuid.UUID(int=i), [_fact(i)])
        await journal.rotate()
        await journal.wait_durable(position)
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: not _batches_held_by_threads(f"journal-{tmp_path.name}"),
                "the journal's threads let go of their last batches",
            )
        tg.cancel_scope.cancel()
    journal.close()
