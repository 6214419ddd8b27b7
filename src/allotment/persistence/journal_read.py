"""Reading the journal: recovery's `read_journal`, which truncates a torn tail, and the
read-only `iter_records` for readers beside a running server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from allotment.persistence.errors import JournalCorrupt
from allotment.persistence.journal_format import SegmentScan, segment_first_position
from allotment.persistence.journal_io import segments, truncate_file
from allotment.persistence.ports import JournalRecord

__all__ = ("ReadResult", "iter_records", "read_journal")

logger = logging.getLogger("allotment.journal")


@dataclass(frozen=True, slots=True)
class ReadResult:
    records: list[JournalRecord]
    last_position: int  # 0 when the journal is empty


def _scan_segment(scan: SegmentScan, last: bool, repair: bool = True) -> Iterator[JournalRecord]:
    """The records of one segment's scan. Damage that no valid record follows, in the last
    segment, is a torn write: the segment is truncated there with a warning when `repair` (a
    reader that must not write just stops there). Any other damage raises."""
    yield from scan
    damage = scan.damage
    if damage is None:
        return
    if not (last and damage.torn_tail):
        raise scan.corrupt()
    if repair:
        logger.warning(
            "journal %s: %s at byte %d and no valid record after it (a torn write);"
            " truncating %d bytes",
            scan.name,
            damage.reason,
            damage.offset,
            scan.path.stat().st_size - damage.offset,
        )
        truncate_file(scan.path, damage.offset)


def read_journal(directory: Path, after: int = 0) -> ReadResult:
    """Every record with position > `after` (the snapshot's), in order, truncating a torn
    tail. What the snapshot holds is not read again (docs/internals.md, "Recovery"): a closed
    segment whose records all precede `after` is not opened, and in the others the records
    up to `after` are checked (frame, checksum, sequence) but not decoded. The last segment
    is always scanned, for its torn tail and the journal's last position.

    Raises:
        JournalCorrupt: damage that valid records follow, or a gap in the positions.
    """
    files = segments(directory)
    records: list[JournalRecord] = []
    last_position = 0
    for index, path in enumerate(files):
        first = segment_first_position(path.name)
        if index == 0 and first > after + 1:
            # The records between the snapshot and this segment were deleted: recovering
            # without them would silently lose acknowledged changes.
            raise JournalCorrupt(
                path.name, 0, f"starts at {first}, but the snapshot ends at {after}"
            )
        if last_position and first != last_position + 1:
            raise JournalCorrupt(path.name, 0, f"position {first} follows {last_position}")
        last = index == len(files) - 1
        closed_through = None if last else segment_first_position(files[index + 1].name) - 1
        if closed_through is not None and closed_through <= after:
            last_position = closed_through
            continue  # the snapshot holds every record of this closed segment
        scan = SegmentScan(path, path.read_bytes(), skip_through=after)
        records.extend(_scan_segment(scan, last))
        if scan.records_read:
            last_position = first + scan.records_read - 1
    return ReadResult(records=records, last_position=last_position)


def iter_records(
    directory: Path, after: int = 0, upto: int | None = None
) -> Iterator[JournalRecord]:
    """Records with `after < position <= upto`, in order, reading only: a torn tail ends the
    iteration and is left for recovery to repair. For readers beside a running server (the
    history exporter), which must pass `upto` = the journal's durable position.

    Raises:
        JournalCorrupt: damage that valid records follow.
    """
    files = segments(directory)
    for index, path in enumerate(files):
        following = files[index + 1] if index + 1 < len(files) else None
        if following is not None and segment_first_position(following.name) - 1 <= after:
            continue  # every record of this segment is at or before `after`
        scan = SegmentScan(path, path.read_bytes())
        for record in _scan_segment(scan, last=following is None, repair=False):
            if upto is not None and record.position > upto:
                return
            if record.position > after:
                yield record
