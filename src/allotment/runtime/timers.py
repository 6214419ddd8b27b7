"""When each customer next has something due: a heap of (instant, customer) with lazy deletion.

A customer has at most one live entry, the one recorded in `_at`; an entry whose instant no
longer matches is stale and skipped when it surfaces. Only an earlier instant pushes a new
entry, so the heap holds at most a few entries per customer.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable
from datetime import datetime

__all__ = ("Timers",)


class Timers:
    __slots__ = ("_at", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, uuid.UUID]] = []
        self._at: dict[uuid.UUID, datetime] = {}

    def __len__(self) -> int:
        return len(self._at)

    def schedule(self, customer_id: uuid.UUID, due: datetime | None) -> None:
        """Make sure `customer_id` is looked at by `due` (None: nothing due)."""
        if due is None:
            return
        known = self._at.get(customer_id)
        if known is None or due < known:
            self._at[customer_id] = due
            heapq.heappush(self._heap, (due, customer_id))

    def postpone(self, customer_id: uuid.UUID, at: datetime) -> None:
        """Look at `customer_id` next at `at`, even if its state says it is due earlier (its
        catch-up failed: retrying at once would spin)."""
        self._at[customer_id] = at
        heapq.heappush(self._heap, (at, customer_id))

    def rebuild(self, dues: Iterable[tuple[uuid.UUID, datetime]]) -> None:
        """Replace every entry at once: one heapify, O(n), instead of n pushes."""
        self._at = {}
        for customer_id, due in dues:
            known = self._at.get(customer_id)
            if known is None or due < known:
                self._at[customer_id] = due
        self._heap = [(due, customer_id) for customer_id, due in self._at.items()]
        heapq.heapify(self._heap)

    def next_at(self) -> datetime | None:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale: superseded by an earlier instant, or taken
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Take up to `limit` customers due by `now`, earliest first."""
        taken: list[uuid.UUID] = []
        while len(taken) < limit and self._heap and self._heap[0][0] <= now:
            due, customer_id = heapq.heappop(self._heap)
            if self._at.get(customer_id) != due:
                continue
            del self._at[customer_id]
            taken.append(customer_id)
        return taken
