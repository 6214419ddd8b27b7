"""Bounded in-memory buffers between the hot path and the analytics drain.

When full, a buffer drops its oldest record and counts the drop, so the hot path never waits
on a slow consumer. Audit records of checks (ENT-30) go this way: journalling every check
would cost the hot path, so they are best effort (ENT-33: an audit failure never changes a
decision), and a dropped one is gone; `/health` shows how many. They live in `AuditRing`
(runtime/audit_ring.py), which keeps a record's parts in reused slots and has exactly this
FIFO's behaviour and `BufferStatistics` (tests/runtime/test_audit_ring.py compares the two).
Accepted events and credit transactions reach the history from the journal
(`persistence.history_export`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

import msgspec

__all__ = ("BoundedBuffer", "BufferStatistics")

T = TypeVar("T")


class BufferStatistics(msgspec.Struct, frozen=True, kw_only=True):
    size: int
    size_max: int
    appended: int
    dropped: int


class BoundedBuffer(Generic[T]):
    """A FIFO with an explicit bound and drop-oldest overflow."""

    def __init__(self, size_max: int) -> None:
        if size_max < 1:
            raise ValueError("size_max must be >= 1")
        self._items: deque[T] = deque()
        self._size_max = size_max
        self._appended = 0
        self._dropped = 0

    def append(self, item: T) -> None:
        if len(self._items) >= self._size_max:
            self._items.popleft()
            self._dropped += 1
        self._items.append(item)
        self._appended += 1

    def requeue(self, items: list[T]) -> None:
        """Put back records a consumer failed to write, oldest first, ahead of newer ones;
        whatever no longer fits is dropped (and counted) from the oldest end."""
        for item in reversed(items):
            if len(self._items) >= self._size_max:
                self._dropped += 1
                continue
            self._items.appendleft(item)

    def drain(self, count_max: int | None = None) -> list[T]:
        """Remove and return up to `count_max` oldest records (all when None)."""
        count = len(self._items) if count_max is None else min(count_max, len(self._items))
        return [self._items.popleft() for _ in range(count)]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def statistics(self) -> BufferStatistics:
        return BufferStatistics(
            size=len(self._items),
            size_max=self._size_max,
            appended=self._appended,
            dropped=self._dropped,
        )
