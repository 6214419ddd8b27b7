"""Idempotency indexes.

Event keys (EVT-35..EVT-38) are scoped to the environment, not the customer, so they live
beside the customers rather than inside one. A key is reserved before the turn and released if
the turn rejects the event, so check-and-insert is atomic (EVT-37): nothing awaits in between.

Keys are remembered as 16-byte BLAKE2b digests in one bucket per UTC day of acceptance. By
default they are kept forever (EVT-38). An operator may bound memory with a window
(`idempotency_window_days`, at least the 35 days clients may retry for): older days are then
forgotten a whole day at a time, and a retry older than the window is accepted as new.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from datetime import date, datetime

__all__ = ("AuditKeyWindow", "EventKeyIndex", "key_digest")


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


class EventKeyIndex:
    """Accepted event keys of one environment within the duplicate window."""

    def __init__(self, window_days: int | None = None) -> None:
        self._window_days = window_days  # None keeps keys forever (EVT-38)
        self._days: dict[date, set[bytes]] = {}
        self._count = 0

    def reserve(self, key: str, at: datetime) -> bool:
        """Claim `key` at `at`. False when it was already claimed: the event is a duplicate."""
        digest = key_digest(key)
        for keys in self._days.values():
            if digest in keys:
                return False
        self._days.setdefault(at.date(), set()).add(digest)
        self._count += 1
        return True

    def release(self, key: str, at: datetime) -> None:
        """Give back a key whose event was rejected, so a corrected retry is accepted."""
        keys = self._days.get(at.date())
        if keys is not None and key_digest(key) in keys:
            keys.discard(key_digest(key))
            self._count -= 1

    def remember(self, digest: bytes, day: date) -> None:
        """Restore a key from a snapshot or the journal (no duplicate check)."""
        keys = self._days.setdefault(day, set())
        if digest not in keys:
            keys.add(digest)
            self._count += 1

    def expire(self, today: date) -> int:
        """Forget days older than the window; returns the number of keys forgotten."""
        if self._window_days is None:
            return 0
        old = [day for day in self._days if (today - day).days > self._window_days]
        forgotten = sum(len(self._days.pop(day)) for day in old)
        self._count -= forgotten
        return forgotten

    def export_days(self) -> Iterator[tuple[date, list[bytes]]]:
        """Each day's keys, copied one day at a time (callers may yield between days)."""
        for day in list(self._days):
            keys = self._days.get(day)
            if keys is not None:
                yield day, list(keys)

    def __contains__(self, key: str) -> bool:
        digest = key_digest(key)
        return any(digest in keys for keys in self._days.values())

    def __len__(self) -> int:
        return self._count


class AuditKeyWindow:
    """ENT-32: `context.idempotencyKey` de-duplicates audit records only. The window is bounded
    (least recently seen keys leave first) because a repeat only saves one audit row."""

    def __init__(self, size_max: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size_max = size_max

    def first_sighting(self, key: str) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self._size_max:
            self._keys.popitem(last=False)
        return True
