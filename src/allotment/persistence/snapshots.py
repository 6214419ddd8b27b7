"""State checkpoints that recovery starts from.

A snapshot file `snapshot-<position, 20 digits>.snap` holds, in checksummed frames: a header
(journal position at the start of the checkpoint, catalog, remembered event keys) and the
customers, encoded in chunks between which the event loop keeps serving. Each customer records
the last journal position applied to it, so recovery replays from the header's position and
skips, per customer, what its encoded state already holds.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from io import FileIO
from pathlib import Path

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.state import CustomerState
from allotment.persistence.compact_state import Keys, encode_stored, keys_of, read_keys
from allotment.persistence.errors import SnapshotCorrupt
from allotment.persistence.file_modes import PRIVATE

__all__ = (
    "LoadedSnapshot",
    "SnapshotFile",
    "SnapshotHeader",
    "StoredCustomers",
    "chunk_frames",
    "chunk_part",
    "encode_customers",
    "frame",
    "header_frame",
    "load_latest",
    "remove_temporary",
)

logger = logging.getLogger("allotment.snapshots")

MAGIC = b"ALLOTSNP"
# 2: event keys as packed tables in frames after the customers; 3: each chunk of customers is
# an index frame (their `Keys` and lengths) and a frame of their stored forms (compact_state)
VERSION = 3
_VERSIONS = (1, 2, 3)  # readable
_PREFIX = struct.Struct("<8sH")
_FRAME = struct.Struct("<II")
_IOV_MAX = 512  # buffers per writev call (POSIX guarantees at least 16; Linux allows 1024)


class SnapshotHeader(msgspec.Struct, kw_only=True):
    position: int  # every journal record <= position is reflected in the snapshot
    created_at: datetime
    catalog: Catalog
    customers: int
    chunks: int  # frames of customers after the header
    key_tables: int = 0  # frames of packed event-key tables after the customers
    key_slots_used: list[int] = []
    keys_per_day: dict[int, int] = {}
    event_keys: dict[date, list[bytes]] = {}  # version 1: keys as digests by day
    unapplied_payments: list[PaymentRecord] = []  # payments no customer owns (MNY-C3)
    prices: PriceTable | None = None  # the model prices last journalled (OPS-D6)
    # The highest invoice and credit-note sequence taken, by kind: after a reshard the shard's
    # own customers may not hold the environment's highest (SCL-71, SCL-72).
    sequences: dict[str, int] = {}
    catalog_version: int = 0  # the broadcast catalog version the shard held (SCL-77)
    dictionary: bytes = b""  # version 3: the preset dictionary the stored forms were made with


class ChunkIndex(msgspec.Struct, array_like=True):
    """Version 3: the customers of the next frame, which holds their stored forms end to end
    (`lengths` in order), so recovery indexes them and keeps their bytes without decoding."""

    keys: list[Keys]
    lengths: list[int]


class _Id(msgspec.Struct, array_like=True, gc=False):
    """A `Keys`' first field alone: msgspec skips the trailing ones unread."""

    id: uuid.UUID


class _ChunkIds(msgspec.Struct, array_like=True, gc=False):
    keys: list[_Id]
    lengths: list[int]


class StoredCustomers:
    """Version 3: a snapshot's customers, their ids and stored forms, in order. Their `Keys`
    stay encoded (every chunk's index frame, end to end) until `keys()` decodes them a chunk
    at a time: decoded all at once at load and freed after the indexes were built, they left
    about 700 B per customer of holes in the allocator's arenas among the long-lived objects
    (issue 21, bench_scale's recovered figure)."""

    __slots__ = ("_ends", "_index", "forms", "ids")

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []
        self.forms: list[bytes] = []
        self._index = bytearray()
        self._ends: list[int] = []  # where each chunk's index frame ends in `_index`

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, index: bytearray, forms: bytearray) -> None:
        """A chunk: its index frame and the frame of its stored forms end to end."""
        chunk = _chunk_ids.decode(index)
        view, offset = memoryview(forms), 0
        for entry, length in zip(chunk.keys, chunk.lengths, strict=True):
            self.ids.append(entry.id)
            self.forms.append(bytes(view[offset : offset + length]))
            offset += length
        if offset != len(forms):
            raise SnapshotCorrupt("a chunk's stored forms do not match its index")
        self._index += index
        self._ends.append(len(self._index))

    def keys(self) -> Iterator[Keys]:
        """Every customer's keys, in order, decoded one chunk at a time (the holes one
        chunk's leave are filled by the next one's)."""
        start = 0
        for end in self._ends:
            yield from _chunk_index.decode(memoryview(self._index)[start:end]).keys
            start = end
        self._index, self._ends = bytearray(), []


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    path: Path
    header: SnapshotHeader
    customers: list[CustomerState]  # versions 1 and 2: decoded
    key_tables: list[bytearray]
    stored: StoredCustomers = field(default_factory=StoredCustomers)  # version 3


_encoder = msgspec.msgpack.Encoder()
_customers = msgspec.msgpack.Decoder(list[CustomerState])
_header = msgspec.msgpack.Decoder(SnapshotHeader)
_chunk_index = msgspec.msgpack.Decoder(ChunkIndex)
_chunk_ids = msgspec.msgpack.Decoder(_ChunkIds)
_index_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")


def encode_customers(customers: Sequence[bytes | CustomerState]) -> list[bytes]:
    """A version-3 chunk, as frames' buffers: each customer's stored form (made now from a
    state; a stored form is written as it is, its keys read back from it)."""
    return chunk_frames([chunk_part(customer) for customer in customers])


def chunk_part(customer: bytes | CustomerState) -> tuple[bytes, Keys]:
    """One customer's part of a chunk: its stored form and the keys it is indexed by. The
    costly step of a checkpoint (about 90 us for a changed customer), made one customer at a
    time so that the caller can let requests run between customers."""
    if isinstance(customer, bytes):
        return customer, read_keys(customer)
    return encode_stored(customer), keys_of(customer)


def chunk_frames(parts: Sequence[tuple[bytes, Keys]]) -> list[bytes]:
    """The frames of a chunk (its index, then its stored forms end to end) from its parts."""
    index = ChunkIndex(keys=[keys for _, keys in parts], lengths=[len(f) for f, _ in parts])
    return frame(_index_encoder.encode(index)) + frame(b"".join(form for form, _ in parts))


def frame(payload: bytes) -> list[bytes]:
    """A frame as two buffers (header, payload), so no payload is ever copied."""
    return [_FRAME.pack(len(payload), zlib.crc32(payload)), payload]


def header_frame(header: SnapshotHeader) -> list[bytes]:
    return frame(_encoder.encode(header))


class SnapshotFile:
    """A snapshot being written: frames are appended as they are encoded (so a checkpoint
    never holds the whole snapshot in memory), and `commit` makes it the newest snapshot
    atomically (fsync, rename, fsync of the directory). Blocking: call every method on a
    worker thread; it holds the GIL only between a handful of large `writev` calls."""

    def __init__(self, directory: Path, position: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._final = directory / f"snapshot-{position:020d}.snap"
        self._temporary = self._final.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
        self._fd: int | None = os.open(
            self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE
        )
        try:
            self.write([_PREFIX.pack(MAGIC, VERSION)])
        except BaseException:
            self.abandon()
            raise

    def write(self, buffers: list[bytes]) -> None:
        fd = self._open_fd()
        for start in range(0, len(buffers), _IOV_MAX):
            group = buffers[start : start + _IOV_MAX]
            written = os.writev(fd, group)
            if written != sum(len(b) for b in group):  # a short write: finish it the slow way
                data = b"".join(group)[written:]
                while data:
                    data = data[os.write(fd, data) :]

    def commit(self, keep: int) -> Path:
        """Make this the newest snapshot and keep the newest `keep`."""
        fd = self._open_fd()
        try:
            os.fsync(fd)
        finally:
            self._fd = None  # closed whatever happens: never closed twice
            os.close(fd)
        os.replace(self._temporary, self._final)
        directory_fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
        for old in sorted(self._directory.glob("snapshot-*.snap"))[:-keep]:
            old.unlink()
        return self._final

    def abandon(self) -> None:
        """Close (if still open) and remove the unfinished file; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self._temporary.unlink(missing_ok=True)

    def _open_fd(self) -> int:
        if self._fd is None:
            raise ValueError("the snapshot file is already committed or abandoned")
        return self._fd


def _read(path: Path) -> LoadedSnapshot:
    """Read frame by frame: each customer chunk is decoded and dropped before the next is
    read, and key tables are read straight into the bytearrays the index keeps, so the file is
    never held whole (at 1M customers it is several GB)."""
    with path.open("rb", buffering=0) as file:
        prefix = file.read(_PREFIX.size)
        magic, version = _PREFIX.unpack(prefix) if len(prefix) == _PREFIX.size else (b"", 0)
        if magic != MAGIC or version not in _VERSIONS:
            raise SnapshotCorrupt(f"{path.name}: not a snapshot of version {_VERSIONS}")
        frames = _Frames(file, path.name)
        header = _header.decode(frames.next())
        customers: list[CustomerState] = []
        stored = StoredCustomers()
        for _ in range(header.chunks):
            if version < 3:
                customers += _customers.decode(frames.next())
            else:
                stored.add(frames.next(), frames.next())
        key_tables = [frames.next() for _ in range(header.key_tables)]
        if file.read(1):
            raise SnapshotCorrupt(f"{path.name}: data after the frames its header announces")
    return LoadedSnapshot(path, header, customers, key_tables, stored)


class _Frames:
    def __init__(self, file: FileIO, name: str) -> None:
        self._file = file
        self._name = name
        self._offset = _PREFIX.size

    def next(self) -> bytearray:
        head = self._exactly(_FRAME.size)
        length, crc = _FRAME.unpack(head)
        payload = self._exactly(length)
        if zlib.crc32(payload) != crc:
            raise SnapshotCorrupt(f"{self._name}: frame at byte {self._offset} fails its checksum")
        self._offset += _FRAME.size + length
        return payload

    def _exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            read = self._file.readinto(view[got:])
            if not read:
                raise SnapshotCorrupt(f"{self._name}: torn frame at byte {self._offset}")
            got += read
        return buffer


def remove_temporary(directory: Path) -> int:
    """Remove the unfinished snapshot files a crash left (`SnapshotFile` writes to a temporary
    name and renames it only once synced, so a temporary file is never a snapshot). Call it
    only at start, when no checkpoint can be writing one. Returns how many were removed."""
    removed = 0
    for path in directory.glob("snapshot-*.tmp"):
        logger.warning("removing %s, a snapshot a crash left unfinished", path.name)
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def load_latest(directory: Path) -> LoadedSnapshot | None:
    """The newest readable snapshot; a damaged one is skipped with a warning. Runs at start,
    so it first removes the temporary files of snapshots a crash left unfinished."""
    remove_temporary(directory)
    for path in sorted(directory.glob("snapshot-*.snap"), reverse=True):
        try:
            return _read(path)
        except (SnapshotCorrupt, msgspec.DecodeError) as error:
            logger.warning("skipping snapshot %s: %s", path.name, error)
    return None
