"""The file journal: append-only segments of checksummed records (framing: journal_format.py).

Group commit, pipelined: `append` only encodes into a buffer. The writer task takes whatever
has accumulated as one batch and hands it to two long-lived threads: the writer thread writes
it, the syncer thread fsyncs it. Two batches are in the pipe at once, so the next batch is
written while the previous one's fsync is in flight, and every turn that arrived meanwhile
shares the next fsync; the event loop never blocks on the disk. Batches finish in order: a
batch is reported durable only after every batch before it, and a failure fails every batch
after it. The threads report back with `call_soon_threadsafe` (the journal runs on anyio's
asyncio backend), not a worker thread and a cancel scope per commit.

After a write or fsync failure the journal is failed until a new one is opened: nothing more
is appended, written or synced through it (after a failed fsync the page cache's state is
unknown, so syncing the same file again proves nothing), and `close_after_failure` cuts the
active segment back to the last durable record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import FileIO
from itertools import pairwise
from pathlib import Path
from queue import SimpleQueue

import anyio

from allotment.domain.facts import EnvironmentFact, Fact
from allotment.histogram import BATCH_BUCKETS, LATENCY_BUCKETS, Histogram
from allotment.persistence.codec import FORMAT_VERSION, encode_record
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.file_modes import private_opener
from allotment.persistence.journal_format import (
    HEADER_SIZE,
    encode_frame,
    encode_header,
    header_version,
    segment_first_position,
)
from allotment.persistence.journal_io import (
    JournalIO,
    RealIO,
    fsync_directory,
    probe,
    segments,
    truncate_file,
)
from allotment.persistence.journal_read import ReadResult, iter_records, read_journal
from allotment.persistence.journal_repair import RepairReport, repair_journal
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


def _segment_name(first_position: int) -> str:
    return f"journal-{first_position:020d}.wal"


_DEPTH = 2  # batches in the pipe: one being synced while the next is written


@dataclass(slots=True, eq=False)
class _Batch:
    """One group commit on its way through the writer and syncer threads. The thread that
    finishes it sets `done` last; the loop reads the rest only after seeing `done`."""

    data: bytes
    records: int
    last: int  # the batch's last position
    rotate: bool  # a rotation was asked for; the writer also sets it when the segment is full
    started: float
    end_offset: int = 0  # the active segment's size once the batch is written
    durable: bool = False  # written (and synced, when syncing)
    rotated: bool = False
    error: BaseException | None = None
    done: bool = False
    rotation_done: threading.Event | None = None  # the writer waits on it: a new segment


_Queue = SimpleQueue[_Batch | None]  # None: the thread ends


class FileJournal:
    """The journal of one environment. `run()` is the writer task; it must be running for
    `wait_durable` to return (except with `Durability.NONE`).

    Args:
        directory: the environment's journal directory; recovery (`read_journal`) has run.
        durability: when a position counts as durable.
        next_position: the position the next append takes.
        segment_size_max: a segment past this size is closed and a new one started.
        io: where bytes and fsyncs go; a `FaultyIO` injects failures in tests.
        commit_seconds: where each group commit's duration (write and sync) is counted; the
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
        self._segment_size_max = segment_size_max
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
        self._inflight: deque[_Batch] = deque()
        self._call_soon: Callable[[Callable[[], None]], object] | None = None
        self._waiters = DurableWaiters()
        # The threads' side: set by the thread that failed, read by both.
        self._write_failed = False
        self._sync_failed = False
        self._failure: BaseException | None = None
        self._rotate_requested = False
        self._rotations = 0
        self.commits = 0  # statistics: fsyncs (or writes) performed
        self.records_committed = 0
        self.commit_seconds = commit_seconds or Histogram(LATENCY_BUCKETS)
        self.commit_records = commit_records or Histogram(BATCH_BUCKETS)
        directory.mkdir(parents=True, exist_ok=True)
        self._path, self._file = self._open_active(next_position)
        self._durable_offset = self._file.tell()  # the active segment's bytes known durable
        self._written_offset = self._durable_offset  # and its bytes written

    def _open_active(self, next_position: int) -> tuple[Path, FileIO]:
        """The segment new records go to: the last one, unless it is of an older format."""
        files = segments(self.directory)
        path = files[-1] if files else self.directory / _segment_name(next_position)
        if files:
            with path.open("rb") as reader:
                head = reader.read(HEADER_SIZE)
            if head and header_version(head) != FORMAT_VERSION:
                if path.stat().st_size > HEADER_SIZE:  # an old segment stays as it is
                    path = self.directory / _segment_name(next_position)
                else:  # a torn or old header with no record after it
                    truncate_file(path, 0)
        created = not path.exists()
        file = FileIO(
            path, "a", opener=private_opener
        )  # unbuffered: nothing is left in a buffer to write at close
        if file.tell() == 0:
            self._io.write(file, encode_header(next_position))
        if created:  # the new file's name must survive a power cut with its records
            fsync_directory(self.directory)
        return path, file

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

    def _rotate_segment(self, first_position: int) -> None:
        """Close the segment durably and start the next one."""
        if self._durable_offset <= HEADER_SIZE:
            return  # an empty segment is already a clean boundary
        self._io.fsync(self._file.fileno())
        self._file.close()
        path = self.directory / _segment_name(first_position)
        self._durable_offset = 0
        self._path, self._file = path, FileIO(path, "a", opener=private_opener)
        self._io.write(self._file, encode_header(first_position))
        self._durable_offset = self._written_offset = HEADER_SIZE
        fsync_directory(self.directory)

    async def run(self) -> None:
        """The writer loop: hands batches of appended records to the writer and syncer
        threads, two in the pipe. Returns once the journal has failed: a failed journal
        writes nothing more. Cancelled, it still waits for the batches in flight."""
        wakeup = self._wakeup = asyncio.Event()
        self._call_soon = asyncio.get_running_loop().call_soon_threadsafe
        to_write: _Queue = SimpleQueue()
        to_sync: _Queue = SimpleQueue()
        for target, role in ((self._write_loop, "writer"), (self._sync_loop, "syncer")):
            name, queues = f"journal-{role}-{self.directory.name}", (to_write, to_sync)
            threading.Thread(target=target, args=queues, name=name, daemon=True).start()
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

    def _submit(self, to_write: _Queue) -> None:
        records, self._pending = self._pending, []
        rotate, self._rotate_requested = self._rotate_requested, False
        batch = _Batch(
            b"".join(records), len(records), self._pending_last, rotate, time.perf_counter()
        )
        self._inflight.append(batch)
        to_write.put(batch)

    def _write_loop(self, to_write: _Queue, to_sync: _Queue) -> None:
        """The writer thread: one write per batch, in order. A batch that is not synced and
        fills no segment is finished here; the others go on to the syncer."""
        while (batch := to_write.get()) is not None:
            if self._write_failed or self._sync_failed:  # nothing more reaches the file
                self._finish(batch)
                continue
            try:
                if batch.data:
                    self._io.write(self._file, batch.data)
            except Exception as error:  # any I/O failure stops acknowledgements
                self._write_failed = True
                batch.error = error
                self._finish(batch)
                continue
            self._written_offset += len(batch.data)
            batch.end_offset = self._written_offset
            batch.rotate = batch.rotate or batch.end_offset >= self._segment_size_max
            if not (self._sync or batch.rotate):
                self._durable_offset, batch.durable = batch.end_offset, True
                self._finish(batch)
                continue
            rotation = batch.rotation_done = threading.Event() if batch.rotate else None
            to_sync.put(batch)
            if rotation is not None:  # the next batch goes to the next segment
                rotation.wait()

    def _sync_loop(self, to_write: _Queue, to_sync: _Queue) -> None:
        """The syncer thread: the fsync of each written batch, in order (it covers everything
        written before it), then the batch's rotation. After a failed fsync it syncs nothing
        more: the page cache's state is unknown."""
        del to_write  # the writer's; the signature is shared
        while (batch := to_sync.get()) is not None:
            if not self._sync_failed:
                try:
                    if self._sync and batch.data:
                        self._io.fsync(self._file.fileno())
                    self._durable_offset, batch.durable = batch.end_offset, True
                    if batch.rotate:
                        self._rotate_segment(batch.last + 1)
                        batch.rotated = True
                except Exception as error:  # any I/O failure stops acknowledgements
                    self._sync_failed = True
                    batch.error = error
            self._finish(batch)

    def _finish(self, batch: _Batch) -> None:
        """On a thread: mark `batch` done and have the loop publish it."""
        batch.done = True
        if batch.rotation_done is not None:
            batch.rotation_done.set()
        assert self._call_soon is not None
        try:
            self._call_soon(self._resolve)
        except RuntimeError:  # the loop is closed: nobody waits any more
            logger.warning("journal %s: a batch finished after its loop closed", self._path)

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

    def _publish(self, batch: _Batch) -> None:
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
        self._io.fsync(self._file.fileno())
        self._file.close()

    def close_after_failure(self) -> None:
        """Cut the active segment back to its last durable record, sync that, and close, so
        records written but never acknowledged are not kept. Call it only when `run()` is not
        running (it returns by itself after a failure). Safe to call again after it raised.

        The sync goes through a new file descriptor, and only covers the truncation: the bytes
        kept were synced before the failure, the bytes the failed sync left unknown are cut.

        Raises:
            OSError: the disk still refuses; retry later (`probe` tells when to).
        """
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:  # the descriptor is released anyway; its error is the old one
                logger.warning("journal %s: closing after failure", self._path.name)
        fd = os.open(self._path, os.O_RDWR)
        try:
            os.ftruncate(fd, self._durable_offset)
            self._io.fsync(fd)
        finally:
            os.close(fd)
        logger.warning(
            "journal %s: cut back to byte %d, its last durable record",
            self._path.name,
            self._durable_offset,
        )
