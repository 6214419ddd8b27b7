"""The file journal: append-only segments of checksummed records (framing: journal_format.py).

Group commit, pipelined: `append` only encodes into a buffer. The writer task takes whatever
has accumulated as one batch and hands it to two long-lived threads: the writer thread writes
it, the syncer thread fsyncs it. Two batches are in the pipe at once, so the next batch is
written while the previous one's fsync is in flight, and every turn that arrived meanwhile
shares the next fsync; the event loop never blocks on the disk. Batches finish in order, as if
committed one after the other: a batch is reported durable only after every batch before it,
and a failure fails its batch and every batch after it (a failed write does not fail the batch
ahead whose fsync was in flight: that batch is on disk). The threads report back with
`call_soon_threadsafe` (the journal runs on anyio's asyncio backend), not a worker thread and a
cancel scope per commit.

After a write or fsync failure the journal is failed until a new one is opened: nothing more
is appended, written or synced through it (after a failed fsync the page cache's state is
unknown, so syncing the same file again proves nothing), and `close_after_failure` cuts the
active segment back to the last durable record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from enum import StrEnum
from io import FileIO
from itertools import pairwise
from pathlib import Path
from queue import SimpleQueue

import anyio

from allotment.domain.facts import EnvironmentFact, Fact
from allotment.histogram import BATCH_BUCKETS, LATENCY_BUCKETS, Histogram
from allotment.persistence.codec import encode_record
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.journal_format import (
    encode_frame,
    segment_first_position,
)
from allotment.persistence.journal_io import (
    JournalIO,
    RealIO,
    fsync_directory,
    probe,
    segments,
)
from allotment.persistence.journal_read import ReadResult, iter_records, read_journal
from allotment.persistence.journal_repair import RepairReport, repair_journal
from allotment.persistence.journal_segment import ActiveSegment, Batch, BatchQueue
from allotment.persistence.journal_waiters import DurableWaiters
from allotment.persistence.ports import JournalRecord

__all__ = (
    "Durability",
    "FileJournal",
    "ReadResult",
    "RepairReport",
    "iter_records",
    "probe",
    "read_journal",
    "repair_journal",
    "segments",
)

logger = logging.getLogger("allotment.journal")


class Durability(StrEnum):
    FSYNC = "fsync"  # acknowledged = on disk (fsync)
    WRITE = "write"  # acknowledged = handed to the OS; survives a process crash, not a power cut
    NONE = "none"  # acknowledged at once; written in the background; a crash loses data


_DEPTH = 2  # batches in the pipe: one being synced while the next is written


class FileJournal:
    """The journal of one environment. `run()` is the writer task; it must be running for
    `wait_durable` to return (except with `Durability.NONE`).

    Args:
        directory: the environment's journal directory; recovery (`read_journal`) has run.
        durability: when a position counts as durable.
        next_position: the position the next append takes.
        segment_size_max: a segment past this size is closed and a new one started.
        io: where bytes and fsyncs go; a `FaultyIO` injects failures in tests.
        commit_seconds: where each group commit's duration is counted, from its hand-off to
            the threads until it is durable (a wait behind the batch ahead included); the
            storage passes the environment's own, so the counts outlive a rebuild.
        commit_records: where each group commit's number of records is counted.
    """

    def __init__(
        self,
        directory: Path,
        durability: Durability = Durability.FSYNC,
        next_position: int = 1,
        segment_size_max: int = 64 * 1024 * 1024,
        *,
        io: JournalIO | None = None,
        commit_seconds: Histogram | None = None,
        commit_records: Histogram | None = None,
    ) -> None:
        self.directory = directory
        self.durability = durability
        self._io: JournalIO = io or RealIO()
        self._position = next_position - 1  # last position handed out
        self._durable = self._position
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_last = self._position
        self._sync = durability is Durability.FSYNC
        # The loop's side of the pipe, made by `run` (recovery builds the journal before the
        # loop starts): its wakeup, the batches in flight, and how threads call back.
        self._wakeup: asyncio.Event | None = None
        self._inflight: deque[Batch] = deque()
        self._call_soon: Callable[[Callable[[], None]], object] | None = None
        self._waiters = DurableWaiters()
        self._failure: BaseException | None = None
        self._rotate_requested = False
        self._rotations = 0
        self.commits = 0  # statistics: fsyncs (or writes) performed
        self.records_committed = 0
        self.commit_seconds = commit_seconds or Histogram(LATENCY_BUCKETS)
        self.commit_records = commit_records or Histogram(BATCH_BUCKETS)
        directory.mkdir(parents=True, exist_ok=True)
        self._segment = ActiveSegment(
            directory, self._io, self._sync, segment_size_max, next_position
        )

    @property
    def _file(self) -> FileIO:
        """The active segment's file (tests point its descriptor at a full disk)."""
        return self._segment.file

    def _notify_writer(self) -> None:
        if self._wakeup is not None:  # no writer yet: it looks at pending first
            self._wakeup.set()

    @property
    def position(self) -> int:
        """The last position handed out."""
        return self._position

    @property
    def durable_position(self) -> int:
        """The last position as durable as the durability mode promises."""
        return self._durable

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet written (0 once failed: they are dropped)."""
        return self._pending_bytes

    @property
    def failure(self) -> BaseException | None:
        """The write or fsync error that failed the journal; None while it is healthy."""
        return self._failure

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int:
        return self._append(JournalRecord(self._position + 1, customer_id, list(facts), []))

    def append_catalog(self, fact: EnvironmentFact) -> int:
        return self._append(JournalRecord(self._position + 1, None, [], [fact]))

    def _unavailable(self) -> JournalUnavailable:
        error = JournalUnavailable("the journal failed to write; it takes nothing until reopened")
        error.__cause__ = self._failure
        return error

    def _append(self, record: JournalRecord) -> int:
        if self._failure is not None:
            raise self._unavailable()
        frame = encode_frame(record.position, encode_record(record))
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        self._position = self._pending_last = record.position
        self._notify_writer()
        return record.position

    async def wait_durable(self, position: int) -> None:
        """Return once `position` is as durable as the mode promises (at once with `none`).

        Raises:
            JournalUnavailable: the journal failed before `position` was durable; the change
                must not be acknowledged.
        """
        while self._durable < position:
            if self._failure is not None:
                raise self._unavailable()
            if self.durability is Durability.NONE:
                return
            await self._waiters.wait(position)

    async def flush(self) -> None:
        """Wait until everything appended so far is written, whatever the durability mode
        (a clean shutdown loses nothing even with `none`).

        Raises:
            JournalUnavailable: the journal is failed (even if everything was written): a
                checkpoint must not publish state while the journal is failed.
        """
        target = self._position
        while self._failure is None and self._durable < target:
            self._notify_writer()
            await self._waiters.wait(target)
        if self._failure is not None:
            raise self._unavailable()

    async def rotate(self) -> int:
        """Close the current segment and start a new one; returns the last position written
        to the closed segments, all of which are then complete, durable files.

        Raises:
            JournalUnavailable: the journal is failed, before or while rotating.
        """
        position = self._position
        generation = self._rotations
        self._rotate_requested = True
        while self._rotations == generation and self._failure is None:
            self._notify_writer()
            await self._waiters.wait(0)  # woken by the next batch that finishes
        if self._failure is not None:
            raise self._unavailable()
        return position

    async def run(self) -> None:
        """The writer loop: hands batches of appended records to the writer and syncer
        threads, two in the pipe. Returns once the journal has failed: a failed journal
        writes nothing more. Cancelled, it still waits for the batches in flight."""
        wakeup = self._wakeup = asyncio.Event()
        self._call_soon = asyncio.get_running_loop().call_soon_threadsafe
        to_write, to_sync = self._start_threads()
        try:
            while self._failure is None:
                if len(self._inflight) < _DEPTH and (self._pending or self._rotate_requested):
                    self._submit(to_write)
                else:
                    wakeup.clear()
                    await wakeup.wait()
        finally:
            with anyio.CancelScope(shield=True):  # the threads must be idle before a close
                while self._inflight:
                    wakeup.clear()
                    await wakeup.wait()
            to_write.put(None)
            to_sync.put(None)

    def _start_threads(self) -> tuple[BatchQueue, BatchQueue]:
        """The writer and syncer threads of this run; returns their queues."""
        to_write: BatchQueue = SimpleQueue()
        to_sync: BatchQueue = SimpleQueue()
        segment, finish, name = self._segment, self._finish, f"journal-{self.directory.name}"
        for target, queues in (
            (segment.write_loop, (to_write, to_sync)),
            (segment.sync_loop, (to_sync,)),
        ):
            threading.Thread(target=target, args=(*queues, finish), name=name, daemon=True).start()
        return to_write, to_sync

    def _submit(self, to_write: BatchQueue) -> None:
        records, self._pending = self._pending, []
        rotate, self._rotate_requested = self._rotate_requested, False
        batch = Batch(
            b"".join(records), len(records), self._pending_last, rotate, time.perf_counter()
        )
        self._inflight.append(batch)
        to_write.put(batch)

    def _finish(self, batch: Batch) -> None:
        """On a thread: mark `batch` done and have the loop publish it."""
        batch.done = True
        if batch.rotation_done is not None:
            batch.rotation_done.set()
        assert self._call_soon is not None
        try:
            self._call_soon(self._resolve)
        except RuntimeError:  # the loop is closed: nobody waits any more
            logger.warning("journal %s: a batch finished after its loop closed", self.directory)

    def _resolve(self) -> None:
        """On the loop: publish the finished batches in order, then wake who they cover."""
        inflight = self._inflight
        while inflight and inflight[0].done:
            if inflight[0].error is not None and not all(b.done for b in inflight):
                break  # the other thread may still be at the file: fail once both are idle
            batch = inflight.popleft()
            if self._failure is None:  # after a failure nothing more is acknowledged
                self._publish(batch)
        self._waiters.wake(self._durable, everyone=self._failure is not None)
        if self._wakeup is not None:
            self._wakeup.set()

    def _publish(self, batch: Batch) -> None:
        if batch.durable:
            self._durable = batch.last
            if batch.data:
                self._pending_bytes -= len(batch.data)
                self.commits += 1
                self.records_committed += batch.records
                self.commit_seconds.observe(time.perf_counter() - batch.started)
                self.commit_records.observe(batch.records)
        self._rotations += 1 if batch.rotated else 0
        if batch.error is not None:
            logger.error(
                "journal write failed; no further change will be acknowledged",
                exc_info=batch.error,
            )
            self._failure = batch.error
            self._pending, self._pending_bytes = [], 0

    def delete_segments_before(self, position: int) -> int:
        """Delete closed segments whose every record has a position <= `position`."""
        files = segments(self.directory)
        deleted = 0
        for path, following in pairwise(files):
            if segment_first_position(following.name) - 1 <= position:
                path.unlink()
                deleted += 1
        if deleted:
            fsync_directory(self.directory)
        return deleted

    def close(self) -> None:
        """Sync and close; after a failure, `close_after_failure` instead. Call it only
        when `run()` is not running."""
        if self._failure is not None:
            self.close_after_failure()
            return
        self._segment.close()

    def close_after_failure(self) -> None:
        """Cut the active segment back to its last durable record (its last completed fsync,
        or its last write when not syncing), sync that, and close, so records written but
        never acknowledged are not kept. Call it only when `run()` is not running (it returns
        by itself after a failure). Safe to call again after it raised.

        The sync goes through a new file descriptor, and only covers the truncation: the bytes
        kept were synced before the failure, the bytes the failed sync left unknown are cut.

        Raises:
            OSError: the disk still refuses; retry later (`probe` tells when to).
        """
        self._segment.close_after_failure()
