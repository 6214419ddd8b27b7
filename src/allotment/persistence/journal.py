"""The file journal: append-only segments of checksummed records (framing: journal_format.py).

Group commit: `append` only encodes into a buffer. One writer task takes whatever has
accumulated, writes it, and fsyncs it on a worker thread, so every turn that arrived while a
commit was in flight shares the next fsync, and the event loop never blocks on the disk.

After a write or fsync failure the journal is failed until a new one is opened: nothing more
is appended, written or synced through it (after a failed fsync the page cache's state is
unknown, so syncing the same file again proves nothing), and `close_after_failure` cuts the
active segment back to the last durable record.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from io import FileIO
from itertools import pairwise
from pathlib import Path

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


@dataclass(slots=True)
class _Progress:
    """What one commit on the worker thread got done before it returned or raised."""

    written: bool = False
    rotated: bool = False


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
        # Events are made on first use: anyio needs a running loop, and recovery builds the
        # journal before the loop starts.
        self._wakeup_event: anyio.Event | None = None
        self._committed_event: anyio.Event | None = None
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

    def _wakeup(self) -> anyio.Event:
        if self._wakeup_event is None:
            self._wakeup_event = anyio.Event()
        return self._wakeup_event

    def _committed(self) -> anyio.Event:
        if self._committed_event is None:
            self._committed_event = anyio.Event()
        return self._committed_event

    def _notify_writer(self) -> None:
        if self._wakeup_event is not None:  # no writer waiting yet: it checks pending first
            self._wakeup_event.set()

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
            await self._committed().wait()

    async def flush(self) -> None:
        """Wait until everything appended so far is written, whatever the durability mode
        (a clean shutdown loses nothing even with `none`).

        Raises:
            JournalUnavailable: the journal is failed (even if everything was written): a
                checkpoint must not publish state while the journal is failed.
        """
        target = self._position
        while self._failure is None and self._durable < target:
            self._wakeup().set()
            await self._committed().wait()
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
            self._wakeup().set()
            await self._committed().wait()
        if self._failure is not None:
            raise self._unavailable()
        return position

    def _commit(self, batch: bytes, sync: bool, rotate: bool, first: int, done: _Progress) -> None:
        """Runs on a worker thread: one write of the whole batch, fsync if asked, then a
        rotation if asked or if the segment is full. `done` says how far it got."""
        if batch:
            self._io.write(self._file, batch)
            if sync:
                self._io.fsync(self._file.fileno())
            self._durable_offset = self._file.tell()
            done.written = True
        if rotate or self._durable_offset >= self._segment_size_max:
            self._rotate_segment(first)
            done.rotated = True

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
        self._durable_offset = HEADER_SIZE
        fsync_directory(self.directory)

    async def run(self) -> None:
        """The writer loop: one write (and fsync) per batch of appended records. Returns
        once the journal has failed: a failed journal writes nothing more."""
        sync = self.durability is Durability.FSYNC
        while self._failure is None:
            if not self._pending and not self._rotate_requested:
                await self._wakeup().wait()
            self._wakeup_event = anyio.Event()
            batch, self._pending = self._pending, []
            last = self._pending_last
            rotate, self._rotate_requested = self._rotate_requested, False
            done, data = _Progress(), b"".join(batch)
            started = time.perf_counter()
            try:
                await anyio.to_thread.run_sync(self._commit, data, sync, rotate, last + 1, done)
            except Exception as error:  # any I/O failure stops acknowledgements
                logger.exception("journal write failed; no further change will be acknowledged")
                self._failure = error
                self._pending, self._pending_bytes = [], 0
            if done.written:
                self._durable = last
                self._pending_bytes -= len(data)
                self.commits += 1
                self.records_committed += len(batch)
                self.commit_seconds.observe(time.perf_counter() - started)
                self.commit_records.observe(len(batch))
            self._rotations += 1 if done.rotated else 0
            committed, self._committed_event = self._committed(), anyio.Event()
            committed.set()

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
