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
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.persistence.errors import SnapshotCorrupt

__all__ = (
    "LoadedSnapshot",
    "SnapshotHeader",
    "encode_customers",
    "frame",
    "header_frame",
    "load_latest",
    "write_snapshot",
)

logger = logging.getLogger("allotment.snapshots")

MAGIC = b"ALLOTSNP"
VERSION = 2  # 2: event keys as packed tables in frames after the customers
_VERSIONS = (1, 2)  # readable
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


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    path: Path
    header: SnapshotHeader
    customers: list[CustomerState]
    key_tables: list[memoryview]


_encoder = msgspec.msgpack.Encoder()
_customers = msgspec.msgpack.Decoder(list[CustomerState])
_header = msgspec.msgpack.Decoder(SnapshotHeader)


def encode_customers(states: list[CustomerState]) -> bytes:
    return _encoder.encode(states)


def frame(payload: bytes) -> list[bytes]:
    """A frame as two buffers (header, payload), so no payload is ever copied."""
    return [_FRAME.pack(len(payload), zlib.crc32(payload)), payload]


def header_frame(header: SnapshotHeader) -> list[bytes]:
    return frame(_encoder.encode(header))


def write_snapshot(directory: Path, position: int, frames: list[bytes], keep: int = 2) -> Path:
    """Write prepared frames atomically (temp file, fsync, rename, fsync dir) and keep the
    newest `keep` snapshots. Blocking: run it on a worker thread. It holds the GIL only
    between a handful of large `writev` calls, so the event loop keeps running meanwhile."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"snapshot-{position:020d}.snap"
    temporary = final.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
    buffers = [_PREFIX.pack(MAGIC, VERSION), *frames]
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for start in range(0, len(buffers), _IOV_MAX):
            group = buffers[start : start + _IOV_MAX]
            written = os.writev(fd, group)
            expected = sum(len(b) for b in group)
            if written != expected:  # a short write: finish it the slow way
                data = b"".join(group)[written:]
                while data:
                    data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    for old in sorted(directory.glob("snapshot-*.snap"))[:-keep]:
        old.unlink()
    return final


def _read(path: Path) -> LoadedSnapshot:
    data = memoryview(path.read_bytes())  # frames are views: the key tables are not copied
    magic, version = _PREFIX.unpack_from(data, 0) if len(data) >= _PREFIX.size else (b"", 0)
    if magic != MAGIC or version not in _VERSIONS:
        raise SnapshotCorrupt(f"{path.name}: not a snapshot of version {_VERSIONS}")
    offset = _PREFIX.size
    frames: list[memoryview] = []
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            raise SnapshotCorrupt(f"{path.name}: frame header torn at byte {offset}")
        length, crc = _FRAME.unpack_from(data, offset)
        payload = data[offset + _FRAME.size : offset + _FRAME.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise SnapshotCorrupt(f"{path.name}: frame at byte {offset} fails its checksum")
        frames.append(payload)
        offset += _FRAME.size + length
    if not frames:
        raise SnapshotCorrupt(f"{path.name}: no header frame")
    header = _header.decode(frames[0])
    if len(frames) - 1 != header.chunks + header.key_tables:
        raise SnapshotCorrupt(
            f"{path.name}: {len(frames) - 1} frames, header says "
            f"{header.chunks} + {header.key_tables}"
        )
    customers = [
        state for frame in frames[1 : 1 + header.chunks] for state in _customers.decode(frame)
    ]
    return LoadedSnapshot(
        path=path, header=header, customers=customers, key_tables=frames[1 + header.chunks :]
    )


def load_latest(directory: Path) -> LoadedSnapshot | None:
    """The newest readable snapshot; a damaged one is skipped with a warning."""
    for path in sorted(directory.glob("snapshot-*.snap"), reverse=True):
        try:
            return _read(path)
        except (SnapshotCorrupt, msgspec.DecodeError) as error:
            logger.warning("skipping snapshot %s: %s", path.name, error)
    return None
