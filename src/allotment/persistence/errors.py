"""Infrastructure failures of the persistence layer."""

from __future__ import annotations

__all__ = ("JournalCorrupt", "JournalUnavailable", "SnapshotCorrupt")


class JournalCorrupt(RuntimeError):
    """A record in the middle of the journal fails its checksum or does not decode.

    Start-up stops: skipping it would silently lose acknowledged facts. Restore the segment
    from a backup, or move it aside knowingly, then start again.
    """

    def __init__(self, segment: str, offset: int, reason: str) -> None:
        super().__init__(f"journal segment {segment} is corrupt at byte {offset}: {reason}")
        self.segment = segment
        self.offset = offset


class JournalUnavailable(RuntimeError):
    """The journal could not be written (disk full, I/O error). The cause is in __cause__.

    The server stops acknowledging changes (503) until it is restarted: memory may hold
    state the disk does not, and a restart recovers the durable truth.
    """


class SnapshotCorrupt(RuntimeError):
    """A snapshot file fails its checksum; recovery falls back to an older one."""
