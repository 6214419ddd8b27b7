"""Idempotency indexes.

Event keys (EVT-35..EVT-38) are scoped to the environment, not the customer, so they live
beside the customers rather than inside one. A key is reserved before the turn and released if
the turn rejects the event, so check-and-insert is atomic (EVT-37): nothing awaits in between.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ("AuditKeyWindow", "EventKeyIndex")


class EventKeyIndex:
    """Every accepted event key of one environment."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def reserve(self, key: str) -> bool:
        """Claim `key`. False when it was already claimed: the event is a duplicate."""
        if key in self._keys:
            return False
        self._keys.add(key)
        return True

    def release(self, key: str) -> None:
        """Give back a key whose event was rejected, so a corrected retry is accepted."""
        self._keys.discard(key)

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


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
