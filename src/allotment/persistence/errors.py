"""Infrastructure failures of the persistence layer."""

from __future__ import annotations

from pathlib import Path

__all__ = (
    "CheckpointRefused",
    "HistoryUnavailable",
    "JournalCorrupt",
    "JournalUnavailable",
    "SnapshotCorrupt",
)


class JournalCorrupt(RuntimeError):
    """Valid records follow damage in the journal, or a segment header is damaged.

    Start-up stops: truncating would silently lose acknowledged records, and skipping them
    would replay later records on a state they were not decided on. Restore the segment from a
    backup, or run the repair command the message names (`allotment journal repair`, see
    docs/internals.md "The journal on disk"), then start again.

    Attributes:
        segment: the segment's file name.
        offset: the byte offset of the damage in that segment.
        directory: the journal directory, when known.
    """

    def __init__(
        self, segment: str, offset: int, reason: str, *, directory: Path | None = None
    ) -> None:
        where = directory / segment if directory is not None else Path(segment)
        super().__init__(
            f"journal segment {segment} is corrupt at byte {offset}: {reason}. Restore it from"
            f" a backup, or repair it with: allotment journal repair {where} --offset {offset}"
        )
        self.segment = segment
        self.offset = offset
        self.directory = directory


class JournalUnavailable(RuntimeError):
    """The journal could not be written (disk full, I/O error). The cause is in __cause__.

    The journal is failed until a new one is opened: every append raises this, and so do
    `wait_durable` for positions not yet durable, `flush` and `rotate` (so no checkpoint can
    publish state the disk does not hold). Writes answer 503; recovery reopens the journal
    (`FileJournal.close_after_failure`, then a new `FileJournal`) once `probe` succeeds.
    """


class SnapshotCorrupt(RuntimeError):
    """A snapshot file fails its checksum; recovery falls back to an older one."""


class CheckpointRefused(RuntimeError):
    """A checkpoint would have published memory that may be ahead of the journal: the shard
    or its journal failed (ARCHITECTURE principle 10). Nothing was published."""


class HistoryUnavailable(Exception):
    """There is no history to read (CloudEvents, the console's analytics reads): allotment
    runs without a data directory, or (the console) no analytics snapshot was taken yet."""
