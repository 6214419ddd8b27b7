"""The journal contract (ports.Journal), run over the in-memory journal, the file journal, and
the file journal on a fault-injecting disk (issue 10, "Tests that must exist": the journal
contract suite; items 2 and 5, journal side).

Faults: a failed write, a failed fsync, a torn write, a full disk. The plain file journal gets
a real full disk (its descriptor pointed at /dev/full); the memory journal is failed directly.
After any fault, nothing undurable is reported durable, and after `close_after_failure` and a
reopen, the records read back are exactly the acknowledged ones.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from allotment.domain.catalog import Feature
from allotment.domain.catalog_facts import FeatureAutoCreated
from allotment.domain.facts import CustomerCreated
from allotment.domain.state import CustomerSource
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.faults import FaultyIO
from allotment.persistence.journal import Durability, FileJournal, probe, read_journal
from allotment.persistence.memory import MemoryJournal
from allotment.persistence.ports import Journal

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)
FAULTS = ("write", "fsync", "torn", "full")
FEATURE = Feature(id=uuid.UUID(int=7), key="api", name="API calls", auto_created=True)


def _fact(i: int) -> CustomerCreated:
    return CustomerCreated(
        at=AT, customer_id=uuid.UUID(int=i), external_id=f"c{i}", source=CustomerSource.API
    )


@dataclass
class Harness:
    """One journal under test, how to break it, and how to read back what survived."""

    journal: MemoryJournal | FileJournal
    directory: Path | None = None
    io: FaultyIO | None = None
    acknowledged: list[int] = field(default_factory=list)  # customer ids, in order

    def inject(self, fault: str) -> None:
        """Arm `fault` so that the next commit fails."""
        journal = self.journal
        if isinstance(journal, MemoryJournal):
            journal.fail(OSError(28, "No space left on device"))
        elif self.io is None:
            assert fault == "full", "only a full disk can be injected without FaultyIO"
            full = os.open("/dev/full", os.O_WRONLY)  # writes fail with a real ENOSPC
            os.dup2(full, journal._file.fileno())
            os.close(full)
        else:
            arm: dict[str, Callable[[], None]] = {
                "write": self.io.fail_writes,
                "fsync": self.io.fail_fsyncs,
                "torn": lambda: self.io.tear_next_write(7) if self.io else None,
                "full": self.io.fill_disk,
            }
            arm[fault]()

    async def record(self, i: int) -> bool:
        """Append customer i's fact and wait; True when acknowledged."""
        try:
            await self.journal.wait_durable(self.journal.append(uuid.UUID(int=i), [_fact(i)]))
        except JournalUnavailable:
            return False
        self.acknowledged.append(i)
        return True

    def reopened(self) -> list[int]:
        """The customer ids a restart recovers, in order."""
        journal = self.journal
        if isinstance(journal, MemoryJournal):
            return [r.customer_id.int for r in journal.records if r.customer_id is not None]
        assert self.directory is not None
        records = read_journal(self.directory).records
        assert [r.position for r in records] == list(range(1, len(records) + 1))
        return [r.customer_id.int for r in records if r.customer_id is not None]


@asynccontextmanager
async def _open(kind: str, tmp_path: Path) -> AsyncIterator[Harness]:
    if kind == "memory":
        yield Harness(MemoryJournal())
        return
    io = FaultyIO() if kind == "file+faults" else None
    journal = FileJournal(tmp_path, Durability.FSYNC, io=io)
    async with anyio.create_task_group() as tg:
        tg.start_soon(journal.run)
        yield Harness(journal, tmp_path, io)
        tg.cancel_scope.cancel()


KINDS = ("memory", "file", "file+faults")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_one_append_is_one_position(kind: str, tmp_path: Path) -> None:
    async with _open(kind, tmp_path) as h:
        journal: Journal = h.journal
        assert (journal.position, journal.durable_position) == (0, 0)
        assert journal.append(uuid.UUID(int=1), [_fact(1), _fact(2)]) == 1
        assert journal.append(uuid.UUID(int=2), []) == 2
        assert journal.append_catalog(FeatureAutoCreated(at=AT, feature=FEATURE)) == 3
        assert journal.position == 3
        assert journal.durable_position <= journal.position
        await journal.wait_durable(3)
        assert journal.durable_position == 3
        assert journal.failure is None


async def test_concurrent_waits_all_return_and_flush_writes_everything(
    kind: str, tmp_path: Path
) -> None:
    async with _open(kind, tmp_path) as h:
        async with anyio.create_task_group() as writers:
            for i in range(1, 41):
                writers.start_soon(h.record, i)
        assert sorted(h.acknowledged) == list(range(1, 41))
        h.journal.append(uuid.UUID(int=41), [_fact(41)])
        await h.journal.flush()
        assert h.journal.durable_position == h.journal.position == 41
        assert h.journal.pending_bytes == 0
    assert sorted(h.reopened()) == list(range(1, 42))


async def test_pending_bytes_count_what_is_appended_and_not_yet_written(
    kind: str, tmp_path: Path
) -> None:
    """Item 5: the shard caps pending bytes; the journal only counts them."""
    async with _open(kind, tmp_path) as h:
        h.journal.append(uuid.UUID(int=1), [_fact(1)])
        if isinstance(h.journal, FileJournal):  # the writer has not run: nothing written yet
            assert h.journal.pending_bytes > 100
        await h.journal.flush()
        assert h.journal.pending_bytes == 0


# Without FaultyIO, the plain file journal can only be given a real full disk (/dev/full).
INJECTABLE = [(k, f) for k in KINDS for f in FAULTS if k != "file" or f == "full"]


@pytest.mark.parametrize(("kind", "fault"), INJECTABLE)
async def test_after_a_fault_nothing_undurable_is_durable_and_a_reopen_keeps_exactly_the_acknowledged(
    kind: str, fault: str, tmp_path: Path
) -> None:
    """Item 2, scenario 2 (journal side): after a write or fsync failure the journal is
    failed; flush and rotate refuse (a checkpoint cannot publish undurable state)."""
    async with _open(kind, tmp_path) as h:
        for i in range(1, 6):
            assert await h.record(i)
        h.inject(fault)
        async with anyio.create_task_group() as writers:
            for i in range(6, 9):
                writers.start_soon(h.record, i)
        assert h.acknowledged == [1, 2, 3, 4, 5]
        journal = h.journal
        assert isinstance(journal.failure, OSError)
        assert journal.durable_position == 5
        for position in range(6, journal.position + 1):
            with pytest.raises(JournalUnavailable):
                await journal.wait_durable(position)
        await journal.wait_durable(5)  # what was durable stays durable
        with pytest.raises(JournalUnavailable):
            journal.append(uuid.UUID(int=9), [_fact(9)])
        with pytest.raises(JournalUnavailable):
            await journal.flush()
        with pytest.raises(JournalUnavailable):
            await journal.rotate()
        assert journal.pending_bytes == 0
        if h.io is not None:
            h.io.free_disk()
        journal.close_after_failure()
    assert h.reopened() == [1, 2, 3, 4, 5]


async def test_a_full_disk_refuses_the_cut_back_until_space_returns(tmp_path: Path) -> None:
    """Item 2: `close_after_failure` raises while the disk refuses; the caller retries."""
    async with _open("file+faults", tmp_path) as h:
        for i in range(1, 4):
            assert await h.record(i)
        h.inject("full")
        assert not await h.record(4)
        assert isinstance(h.journal, FileJournal)
        assert h.io is not None
        with pytest.raises(OSError, match="No space"):
            h.journal.close_after_failure()
        h.io.free_disk()
        probe(tmp_path)
        h.journal.close_after_failure()
    assert h.reopened() == [1, 2, 3]
    reopened = FileJournal(tmp_path, Durability.FSYNC, next_position=4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(reopened.run)
        await reopened.wait_durable(reopened.append(uuid.UUID(int=5), [_fact(5)]))
        tg.cancel_scope.cancel()
    reopened.close()
    assert h.reopened() == [1, 2, 3, 5]


async def test_a_torn_write_left_by_a_crash_is_a_torn_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without `close_after_failure` (the process died), recovery truncates the torn bytes
    and keeps every acknowledged record (item 7)."""
    async with _open("file+faults", tmp_path) as h:
        for i in range(1, 4):
            assert await h.record(i)
        h.inject("torn")
        assert not await h.record(4)
    assert h.reopened() == [1, 2, 3]
    assert "torn write" in caplog.text


def test_probe_writes_syncs_and_leaves_nothing(tmp_path: Path) -> None:
    probe(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "missing")
