"""The journal's framing on disk, and the scanner that tells a torn tail from corruption.

A segment `journal-<first position, 20 digits>.wal`, all integers little-endian:

    segment header (32 bytes)
        8s   b"ALLOTJNL"
        u16  format version (2; segments of version 1 are still read)
        u64  first position (equal to the one in the file name)
        14x  zero
    record, format 2 (20-byte header, then the payload)
        u32  record magic 0xC1524AF7 (bytes F7 4A 52 C1)
        u32  payload length
        u64  position (the first record's is the segment's first position, then +1 each)
        u32  CRC-32 of the 16 bytes above followed by the payload
        ...  payload: a msgpack JournalRecord (codec.py), which holds the position again
    record, format 1 (8-byte header, then the payload)
        u32  payload length
        u32  CRC-32 of the payload

The magic holds 0xC1 and 0xF7, which never occur in UTF-8 text and 0xC1 never in msgpack, so a
customer's strings cannot forge a record boundary inside a payload.

The rule (docs/internals.md, "The journal on disk"): at the first offset X where no valid
record starts, the scanner looks for a valid record anywhere after X (magic, plausible length,
checksum). If there is one, the segment is corrupt at X: acknowledged records follow the
damage, and nothing may be truncated. If there is none (a partial last record, zero fill,
garbage to the end), the bytes from X on are a torn tail: a write that was never acknowledged.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from allotment.persistence.codec import FORMAT_VERSION, decode_record
from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.ports import JournalRecord

__all__ = (
    "HEADER_SIZE",
    "Damage",
    "SegmentScan",
    "encode_frame",
    "encode_header",
    "header_version",
    "segment_first_position",
)

SEGMENT_MAGIC = b"ALLOTJNL"
_HEADER = struct.Struct("<8sHQ14x")
HEADER_SIZE = _HEADER.size
RECORD_MAGIC = b"\xf7\x4a\x52\xc1"
_RECORD = struct.Struct("<4sIQ")  # magic, length, position: the bytes the CRC covers first
_CRC = struct.Struct("<I")
RECORD_HEADER_SIZE = _RECORD.size + _CRC.size
_RECORD_V1 = struct.Struct("<II")
PAYLOAD_MAX = 256 * 1024 * 1024  # a length above this is damage, not a record
_READABLE = (1, FORMAT_VERSION)


def segment_first_position(name: str) -> int:
    """The first position a segment's file name announces (`journal-<position>.wal`)."""
    return int(name.removesuffix(".wal").split("-")[1])


def header_version(head: bytes) -> int | None:
    """The format version a segment header announces; None when it is not a header."""
    if len(head) < HEADER_SIZE:
        return None
    magic, version, _ = _HEADER.unpack_from(head, 0)
    return int(version) if magic == SEGMENT_MAGIC else None


def encode_header(first_position: int, version: int = FORMAT_VERSION) -> bytes:
    return _HEADER.pack(SEGMENT_MAGIC, version, first_position)


def encode_frame(position: int, payload: bytes) -> bytes:
    """One format-2 record: header (magic, length, position, CRC) and payload."""
    head = _RECORD.pack(RECORD_MAGIC, len(payload), position)
    return head + _CRC.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


@dataclass(frozen=True, slots=True)
class Damage:
    """Where a segment stops holding valid records, and whether a valid record follows."""

    offset: int
    reason: str
    next_valid: int | None  # offset of the first valid record after `offset`; None: torn tail

    @property
    def torn_tail(self) -> bool:
        return self.next_valid is None


def _frame_v2(data: bytes, offset: int) -> tuple[int, int, bytes] | str:
    """(position, end, payload) of the format-2 record at `offset`, or why there is none."""
    if offset + RECORD_HEADER_SIZE > len(data):
        return "record header is torn"
    magic, length, position = _RECORD.unpack_from(data, offset)
    if magic != RECORD_MAGIC:
        return "no record magic"
    end = offset + RECORD_HEADER_SIZE + length
    if length > PAYLOAD_MAX or end > len(data):
        return "record extends past the end of the segment"
    (crc,) = _CRC.unpack_from(data, offset + _RECORD.size)
    payload = data[offset + RECORD_HEADER_SIZE : end]
    if zlib.crc32(payload, zlib.crc32(data[offset : offset + _RECORD.size])) != crc:
        return "checksum mismatch"
    return position, end, payload


def _frame_v1(data: bytes, offset: int) -> tuple[int, int, bytes] | str:
    """Format 1 has no magic and no position in the header: the position is the payload's,
    and a zero-length frame (zero fill: CRC-32 of nothing is 0) is never a record."""
    if offset + _RECORD_V1.size > len(data):
        return "record header is torn"
    length, crc = _RECORD_V1.unpack_from(data, offset)
    end = offset + _RECORD_V1.size + length
    if length == 0 or length > PAYLOAD_MAX or end > len(data):
        return "record length is implausible"
    payload = data[offset + _RECORD_V1.size : end]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    try:
        position = decode_record(payload).position
    except msgspec.DecodeError:
        return "undecodable record"
    return position, end, payload


def _written_record(data: bytes, offset: int, expected: int) -> str | None:
    """Why the damaged last record at `offset` was written whole (so bit damage, not a torn
    write), or None. A torn write leaves a record cut short, or zeros or garbage where its
    header should be. A record whose header is intact (magic, expected position, a length
    that fits) was written whole; so was one whose checksum verifies once its magic, length
    (the stored one, or up to the end of the file) and position are rebuilt."""
    if offset + RECORD_HEADER_SIZE > len(data):
        return None
    magic, length, position = _RECORD.unpack_from(data, offset)
    start = offset + RECORD_HEADER_SIZE
    if magic == RECORD_MAGIC and position == expected and start + length <= len(data):
        return "the record is complete, so this is damage, not a torn write"
    (crc,) = _CRC.unpack_from(data, offset + _RECORD.size)
    for candidate in {length, len(data) - start}:
        if start + candidate > len(data):
            continue
        head = _RECORD.pack(RECORD_MAGIC, candidate, expected)
        if zlib.crc32(data[start : start + candidate], zlib.crc32(head)) == crc:
            return "its checksum proves a whole record with a damaged header"
    return None


class SegmentScan:
    """Iterates the records of one segment's bytes; afterwards `damage` tells how it ended
    (None: every byte was a valid record) and `valid_end` where the valid records end.

    Raises (while iterating):
        JournalCorrupt: a valid record is out of sequence or does not decode (never a torn
            write). A damaged header is reported in `damage` at offset 0, like a record.
    """

    def __init__(self, path: Path, data: bytes, skip_through: int = 0) -> None:
        self.path = path
        self.name = path.name
        self._data = data
        # Records at or before this position are checked (frame, checksum, sequence) but
        # neither decoded nor yielded: recovery needs only what follows its snapshot.
        self._skip_through = skip_through
        self.damage: Damage | None = None
        self.valid_end = HEADER_SIZE
        self.version = 0
        self.records_read = 0

    def _header_problem(self) -> str | None:
        if len(self._data) < HEADER_SIZE:
            return "segment header is torn"
        magic, version, first = _HEADER.unpack_from(self._data, 0)
        if magic != SEGMENT_MAGIC or version not in _READABLE:
            return f"not a journal segment header of format {_READABLE}"
        if first != segment_first_position(self.name):
            return f"header says first position {first}"
        self.version = version
        return None

    def __iter__(self) -> Iterator[JournalRecord]:
        problem = self._header_problem()
        if problem is not None:  # a torn tail only if no record of any format follows
            after = self._next_valid(_frame_v2, HEADER_SIZE)
            after = self._next_valid(_frame_v1, HEADER_SIZE) if after is None else after
            self.damage = Damage(0, problem, after)
            return
        frame = _frame_v2 if self.version == 2 else _frame_v1
        expected = segment_first_position(self.name)
        offset = HEADER_SIZE
        while offset < len(self._data):
            found = frame(self._data, offset)
            if isinstance(found, str):
                self.damage = self._damage(frame, offset, found, expected)
                return
            position, end, payload = found
            if position != expected:
                raise self._corrupt(
                    offset, f"record holds position {position}, expected {expected}"
                )
            if position > self._skip_through:
                record = self._decode(offset, payload)
                if record.position != expected:
                    raise self._corrupt(
                        offset, f"record holds position {record.position}, expected {expected}"
                    )
                yield record
            expected, offset = expected + 1, end
            self.valid_end, self.records_read = offset, self.records_read + 1

    def _damage(
        self, frame: Callable[[bytes, int], object], offset: int, reason: str, expected: int
    ) -> Damage:
        next_valid = self._next_valid(frame, offset + 1)
        if next_valid is None and frame is _frame_v2:
            written = _written_record(self._data, offset, expected)
            if written is not None:  # a record that was written whole: its damage is not a tear
                return Damage(offset, f"{reason}; {written}", offset)
        return Damage(offset, reason, next_valid)

    def _decode(self, offset: int, payload: bytes) -> JournalRecord:
        try:
            return decode_record(payload)
        except msgspec.DecodeError as error:
            raise self._corrupt(offset, f"undecodable record: {error}") from None

    def _next_valid(self, frame: Callable[[bytes, int], object], start: int) -> int | None:
        """The offset of the first valid record at or after `start`, byte by byte (format 2
        jumps from one magic to the next: a valid record starts with one)."""
        data = self._data
        if frame is _frame_v1:
            return next(
                (at for at in range(start, len(data)) if not isinstance(_frame_v1(data, at), str)),
                None,
            )
        at = data.find(RECORD_MAGIC, start)
        while at != -1:
            if not isinstance(_frame_v2(data, at), str):
                return at
            at = data.find(RECORD_MAGIC, at + 1)
        return None

    def corrupt(self) -> JournalCorrupt:
        """The refusal for damage that valid records follow (or any damage where a torn
        tail is impossible)."""
        damage = self.damage
        assert damage is not None
        following = (
            f"; a valid record follows at byte {damage.next_valid}"
            if damage.next_valid is not None
            else ""
        )
        return self._corrupt(damage.offset, damage.reason + following)

    def _corrupt(self, offset: int, reason: str) -> JournalCorrupt:
        return JournalCorrupt(self.name, offset, reason, directory=self.path.parent)
