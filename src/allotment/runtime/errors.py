"""What the runtime refuses, and why. The HTTP edge maps each to a 503 with `Retry-After`."""

from __future__ import annotations

__all__ = ("Overloaded", "ShardUnavailable")


class ShardUnavailable(RuntimeError):
    """The shard serves nothing until it is rebuilt from its snapshot and journal.

    Raised after a journal write or fsync failed (memory may hold facts the disk does not) or
    after `evolve` failed inside a turn (memory holds a half-applied fact). Nothing that
    memory holds beyond the journal is ever answered, checkpointed or exported. The system
    rebuilds the shard by itself once the disk accepts writes again (docs/internals.md).
    """

    retry_after_s = 5

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Overloaded(RuntimeError):
    """A change was refused before its turn because a bound was reached (the journal bytes
    waiting for the disk). Nothing changed; the client retries after `retry_after_s`."""

    retry_after_s = 1

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
