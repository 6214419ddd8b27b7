"""The file journal: append-only segments of checksummed, length-prefixed msgpack records.

Layout of a segment `journal-<first position, 20 digits>.wal`:

    header  b"ALLOTJNL" | u16 format version | u64 first position | 14 zero bytes  (32 bytes)
    record  u32 payload length | u32 CRC-32 of the payload | payload (msgpack JournalRecord)

Group commit: `append` only encodes into a buffer. One writer task takes whatever has
accumulated, writes it, and fsyncs it on a worker thread, so every turn that arrived while a
commit was in flight shares the next fsync, and the event loop never blocks on the disk.
"""

from __future__ import annotations

import logging
import os
import struct
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from pathlib import Path

import anyio
import msgspec

from allotment.domain.catalog_facts import CatalogFact
from allotment.domain.facts import Fact
from allotment.persistence.codec import FORMAT_VERSION, JournalRecord, decode_record, encode_record
from allotment.persistence.errors import JournalCorrupt, JournalUnavailable

__all__ = ("Durability", "FileJournal", "read_journal")

logger = logging.getLogger("allotment.journal")

MAGIC = b"ALLOTJNL"
_HEADER = struct.Struct("<8sHQ14x")
_RECORD = struct.Struct("<II")
_PAYLOAD_MAX = 256 * 1024 * 1024  # a length above this is damage, not a record


class Durability(StrEnum):
    FSYNC = "fsync"  # acknowledged = on disk (fsync)
    WRITE = "write"  # acknowledged = handed to the OS; survives a process crash, not a power cut
    NONE = "none"  # acknowledged at once; written in the background; a crash loses data


def _segment_name(first_position: int) -> str:
    return f"journal-{first_position:020d}.wal"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.wal"))


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[JournalRecord]
    last_position: int  # 0 when the journal is empty


def _scan_segment(path: Path, last: bool, repair: bool = True) -> Iterator[JournalRecord]:
    """Records of one segment. A damaged record at the very end of the last segment is a torn
    write: the segment is truncated there with a warning (only when `repair`; a reader that
    must not write, such as the history exporter, just stops there). Damage anywhere else
    raises."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        if last:
            if repair:
                logger.warning(
                    "journal %s: header torn (%d bytes); rewriting it", path.name, len(data)
                )
                _truncate(path, 0)
            return
        raise JournalCorrupt(path.name, 0, "segment header is incomplete")
    magic, version, _ = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise JournalCorrupt(path.name, 0, f"not a format-{FORMAT_VERSION} journal segment")
    offset = _HEADER.size
    while offset < len(data):
        problem = None
        if offset + _RECORD.size > len(data):
            problem, end = "record header is torn", len(data)
        else:
            length, crc = _RECORD.unpack_from(data, offset)
            end = offset + _RECORD.size + length
            payload = data[offset + _RECORD.size : end]
            if length > _PAYLOAD_MAX or end > len(data):
                problem = "record extends past the end of the segment"
            elif zlib.crc32(payload) != crc:
                problem = "checksum mismatch"
        if problem is None:
            try:
                yield decode_record(payload)
            except msgspec.DecodeError as error:
                raise JournalCorrupt(path.name, offset, f"undecodable record: {error}") from None
            offset = end
            continue
        if last and end >= len(data):
            if not repair:
                return
            logger.warning(
                "journal %s: %s at byte %d (a torn write); truncating %d bytes",
                path.name,
                problem,
                offset,
                len(data) - offset,
            )
            _truncate(path, offset)
            return
        raise JournalCorrupt(path.name, offset, problem)


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as file:
        file.truncate(size)
        file.flush()
        os.fsync(file.fileno())


def read_journal(directory: Path, after: int = 0) -> ReadResult:
    """Every record with position > `after`, in order, truncating a torn tail.

    Raises:
        JournalCorrupt: damage in the middle, or a gap in the positions.
    """
    files = segments(directory)
    records: list[JournalRecord] = []
    last_position = 0
    for index, path in enumerate(files):
        expected_first = int(path.stem.split("-")[1])
        if index == 0 and expected_first > after + 1:
            # The records between the snapshot and this segment were deleted: recovering
            # without them would silently lose acknowledged changes.
            raise JournalCorrupt(
                path.name, 0, f"starts at {expected_first}, but the snapshot ends at {after}"
            )
        for record in _scan_segment(path, last=index == len(files) - 1):
            if last_position and record.position != last_position + 1:
                raise JournalCorrupt(
                    path.name, 0, f"position {record.position} follows {last_position}"
                )
            last_position = record.position
            if record.position > after:
                records.append(record)
    return ReadResult(records=records, last_position=last_position)


def iter_records(
    directory: Path, after: int = 0, upto: int | None = None
) -> Iterator[JournalRecord]:
    """Records with `after < position <= upto`, in order, reading only: a torn tail ends the
    iteration and is left for recovery to repair. For readers beside a running server (the
    history exporter), which must pass `upto` = the journal's durable position.

    Raises:
        JournalCorrupt: damage in the middle.
    """
    files = segments(directory)
    for index, path in enumerate(files):
        following = files[index + 1] if index + 1 < len(files) else None
        if following is not None and int(following.stem.split("-")[1]) - 1 <= after:
            continue  # every record of this segment is at or before `after`
        for record in _scan_segment(path, last=following is None, repair=False):
            if upto is not None and record.position > upto:
                return
            if record.position > after:
                yield record


class FileJournal:
    """The journal of one environment. `run()` is the writer task; it must be running for
    `wait_durable` to return."""

    def __init__(
        self,
        directory: Path,
        durability: Durability = Durability.FSYNC,
        next_position: int = 1,
        segment_size_max: int = 64 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self.durability = durability
        self._segment_size_max = segment_size_max
        self._position = next_position - 1  # last position handed out
        self._durable = self._position
        self._pending: list[bytes] = []
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
        directory.mkdir(parents=True, exist_ok=True)
        files = segments(directory)
        self._file = (files[-1] if files else self._new_segment_path(next_position)).open("ab")
        if self._file.tell() == 0:
            self._write_header(next_position)

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
        return self._position

    @property
    def durable_position(self) -> int:
        return self._durable

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    @property
    def pending_bytes(self) -> int:
        return sum(len(b) for b in self._pending)

    def _new_segment_path(self, first_position: int) -> Path:
        return self.directory / _segment_name(first_position)

    def _write_header(self, first_position: int) -> None:
        self._file.write(_HEADER.pack(MAGIC, FORMAT_VERSION, first_position))
        self._file.flush()

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int:
        return self._append(JournalRecord(self._position + 1, customer_id, list(facts), []))

    def append_catalog(self, fact: CatalogFact) -> int:
        return self._append(JournalRecord(self._position + 1, None, [], [fact]))

    def _append(self, record: JournalRecord) -> int:
        if self._failure is not None:
            raise JournalUnavailable(
                "the journal failed earlier; restart the server"
            ) from self._failure
        payload = encode_record(record)
        self._pending.append(_RECORD.pack(len(payload), zlib.crc32(payload)) + payload)
        self._position = self._pending_last = record.position
        self._notify_writer()
        return record.position

    async def wait_durable(self, position: int) -> None:
        """Return once `position` is as durable as the mode promises.

        Raises:
            JournalUnavailable: the write failed; the change must not be acknowledged.
        """
        if self.durability is Durability.NONE:
            return
        while self._durable < position:
            if self._failure is not None:
                raise JournalUnavailable("journal write failed") from self._failure
            await self._committed().wait()
        if self._failure is not None and self._durable < position:
            raise JournalUnavailable("journal write failed") from self._failure

    async def flush(self) -> None:
        """Wait until everything appended so far is written, whatever the durability mode
        (a clean shutdown loses nothing even with `none`)."""
        while self._durable < self._position and self._failure is None:
            self._wakeup().set()
            await self._committed().wait()

    async def rotate(self) -> int:
        """Close the current segment and start a new one; returns the last position written
        to the closed segments, all of which are then complete files."""
        position = self._position
        generation = self._rotations
        self._rotate_requested = True
        while self._rotations == generation and self._failure is None:
            self._wakeup().set()
            await self._committed().wait()
        return position

    def _write_batch(self, batch: list[bytes], sync: bool) -> None:
        """Runs on a worker thread: one write of the whole batch, then fsync if asked."""
        self._file.write(b"".join(batch))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        if self._file.tell() >= self._segment_size_max:
            self._rotate_requested = True

    def _rotate_segment(self, first_position: int) -> None:
        """Runs on a worker thread: close the segment durably and start the next one."""
        if self._file.tell() <= _HEADER.size:
            return  # an empty segment is already a clean boundary
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = self._new_segment_path(first_position).open("ab")
        self._write_header(first_position)
        _fsync_directory(self.directory)

    async def run(self) -> None:
        """The writer loop: one write (and fsync) per batch of appended records."""
        sync = self.durability is Durability.FSYNC
        while True:
            if not self._pending and not self._rotate_requested:
                await self._wakeup().wait()
            self._wakeup_event = anyio.Event()
            batch, self._pending = self._pending, []
            last = self._pending_last
            rotate, self._rotate_requested = self._rotate_requested, False
            try:
                if batch:  # into the current segment, so a rotation closes complete records
                    await anyio.to_thread.run_sync(self._write_batch, batch, sync)
                    self.commits += 1
                if rotate:
                    await anyio.to_thread.run_sync(self._rotate_segment, last + 1)
            except Exception as error:  # any I/O failure stops acknowledgements
                logger.exception("journal write failed; no further change will be acknowledged")
                self._failure = error
            else:
                self._durable = last
                self.records_committed += len(batch)
                self._rotations += 1 if rotate else 0
            committed, self._committed_event = self._committed(), anyio.Event()
            committed.set()

    def delete_segments_before(self, position: int) -> int:
        """Delete closed segments whose every record has a position <= `position`."""
        files = segments(self.directory)
        deleted = 0
        for path, following in pairwise(files):
            next_first = int(following.stem.split("-")[1])
            if next_first - 1 <= position:
                path.unlink()
                deleted += 1
        if deleted:
            _fsync_directory(self.directory)
        return deleted

    def close_after_failure(self) -> None:
        self._file.close()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def probe(directory: Path) -> None:
    path = directory / ".probe"
    with path.open("wb") as file:
        file.write(b"\0" * 4096)
        file.flush()
        os.fsync(file.fileno())
    path.unlink()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
