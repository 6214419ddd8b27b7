"""`allotment journal repair`: what an operator runs when start-up refuses a corrupt journal.

Restoring the segment from a backup is always better. Without one, the repair does the least
destructive thing that makes the journal readable again, and destroys nothing:

- damage that no valid record follows (a torn tail): the segment is truncated there;
- a damaged segment header: it is rebuilt from the file name and the records' format;
- a damaged record header (magic, length or position) of a format-2 record: it is rebuilt when
  the record's checksum proves the rebuilt header and the intact payload right;
- anything else (a damaged payload or checksum): the segment's bytes from the damage on, and
  every later segment, are moved into `set-aside-<segment>-<offset>/` beside the segments. The
  journal then ends before the damage; the records set aside are NOT recovered.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal_format import (
    HEADER_SIZE,
    RECORD_HEADER_SIZE,
    RECORD_MAGIC,
    SegmentScan,
    encode_header,
    segment_first_position,
)
from allotment.persistence.journal_io import fsync_directory, segments, truncate_file

__all__ = ("RepairReport", "repair_journal")

_HEAD = struct.Struct("<4sIQ")


@dataclass(frozen=True, slots=True)
class RepairReport:
    segment: str
    offset: int
    action: str  # what was done, in a sentence
    set_aside: Path | None = None  # where moved bytes went, if any


def _first_damage(path: Path, data: bytes) -> tuple[SegmentScan, int, int | None] | None:
    """(scan, offset of the first damage, offset of the first valid record after it)."""
    scan = SegmentScan(path, data)
    try:
        for _ in scan:
            pass
    except JournalCorrupt as error:  # a valid record out of sequence: only setting aside helps
        return scan, error.offset, error.offset
    if scan.damage is None:
        return None
    return scan, scan.damage.offset, scan.damage.next_valid


def repair_journal(directory: Path, segment: str, offset: int) -> RepairReport:
    """Repair the damage start-up reported at `offset` of `segment` (module docstring).

    Args:
        directory: the journal directory (`<data-dir>/journal/<environment>`).
        segment: the segment's file name, as the refusal names it.
        offset: the byte offset the refusal names; it must be the segment's first damage.

    Returns:
        What was done. Start the server again: any further damage is reported the same way.

    Raises:
        ValueError: the segment has no damage, or its first damage is not at `offset`
            (the command is stale, or mistyped): nothing was changed.
        OSError: the files could not be read or changed.
    """
    path = directory / segment
    data = path.read_bytes()
    found = _first_damage(path, data)
    if found is None:
        raise ValueError(f"{segment} has no damage: nothing to repair")
    scan, damage, next_valid = found
    if damage != offset:
        raise ValueError(f"the first damage in {segment} is at byte {damage}, not {offset}")
    if next_valid is None:
        truncate_file(path, offset)
        return RepairReport(segment, offset, f"truncated a torn tail of {len(data) - offset} bytes")
    if offset == 0:
        version = 2 if data[HEADER_SIZE : HEADER_SIZE + 4] == RECORD_MAGIC else 1
        _write_at(path, 0, encode_header(segment_first_position(segment), version))
        return RepairReport(segment, offset, f"rebuilt the segment header (format {version})")
    # A whole last record with a damaged header runs to the end of the segment.
    end = next_valid if next_valid > offset else len(data)
    rebuildable = scan.version == 2 and end > offset + RECORD_HEADER_SIZE
    if rebuildable and _rebuild_record_header(path, data, offset, end, scan):
        return RepairReport(segment, offset, "rebuilt a record header its checksum confirms")
    return _set_aside(directory, path, offset)


def _rebuild_record_header(
    path: Path, data: bytes, offset: int, end: int, scan: SegmentScan
) -> bool:
    """A record whose magic, length or position is damaged still spans [offset, end),
    and its position is the one expected there: rewrite the header when the checksum agrees."""
    expected = segment_first_position(path.name) + scan.records_read
    head = _HEAD.pack(RECORD_MAGIC, end - offset - RECORD_HEADER_SIZE, expected)
    crc_at = offset + _HEAD.size
    (crc,) = struct.unpack_from("<I", data, crc_at)
    if zlib.crc32(data[offset + RECORD_HEADER_SIZE : end], zlib.crc32(head)) != crc:
        return False
    _write_at(path, offset, head)
    return True


def _set_aside(directory: Path, path: Path, offset: int) -> RepairReport:
    aside = directory / f"set-aside-{path.stem}-{offset}"
    aside.mkdir(exist_ok=True)
    with path.open("rb") as source:
        source.seek(offset)
        tail = source.read()
    _write_new(aside / f"{path.name}.from-{offset}", tail)
    later = [p for p in segments(directory) if p.name > path.name]
    for moved in later:
        moved.rename(aside / moved.name)
    fsync_directory(aside)
    truncate_file(path, offset)
    fsync_directory(directory)
    return RepairReport(
        path.name,
        offset,
        f"set aside {len(tail)} bytes and {len(later)} later segments; the journal now ends"
        f" before byte {offset} of {path.name}",
        aside,
    )


def _write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _write_new(path: Path, data: bytes) -> None:
    with path.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
