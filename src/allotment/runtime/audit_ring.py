"""`AuditRing`: the audit records of checks (ENT-30) on their way to analytics, in reused slots.

A check is the hottest turn, and building its record (a 13-field struct) cost more than the
decision itself. So a check writes the parts of its record into the next slot of parallel
lists, references to objects that exist anyway (the decision, which a repeated check shares
with the previous one, and the request's `EvaluationContext`); the `AuditRecord` is built only
when analytics drains the ring, off the request path (`records.audit_record`, the one place
that knows how).

The bound is explicit and the overflow is counted, as `BoundedBuffer`'s: when full, the oldest
record is dropped. The lists grow with the high-water mark of records waiting (doubling, so
growing costs a check next to nothing on average), never past `size_max`, and their slots are
then reused; a drain clears the slots it took, so a drained decision is not kept alive.
Records a consumer failed to write come back through `requeue` ahead of the ring, already
built, and share its bound.
"""

from __future__ import annotations

import uuid
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

from allotment.domain.replies import Decision
from allotment.persistence.store_ports import AuditRecord
from allotment.runtime.buffers import BufferStatistics
from allotment.runtime.records import EvaluationContext, audit_record

__all__ = ("AuditRing",)

GROWTH_MIN = 64  # slots added at least, when records waiting pass the slots so far


class AuditRing:
    """A FIFO of audit records with an explicit bound and drop-oldest overflow."""

    __slots__ = (
        "_appended", "_at", "_audit", "_count", "_customer", "_decision", "_dropped",
        "_external", "_feature", "_head", "_requested", "_returned", "_size_max",
    )  # fmt: skip

    def __init__(self, size_max: int) -> None:
        if size_max < 1:
            raise ValueError("size_max must be >= 1")
        self._size_max = size_max
        self._head = 0  # the slot of the oldest record in the ring
        self._count = 0  # records in the ring
        self._appended = 0
        self._dropped = 0
        # One list per part of a record; slot i of each is one record.
        self._at: list[Any] = []
        self._customer: list[Any] = []
        self._external: list[Any] = []
        self._feature: list[Any] = []
        self._requested: list[Any] = []
        self._decision: list[Any] = []
        self._audit: list[Any] = []
        self._returned: deque[AuditRecord] = deque()  # requeued: older than the ring's

    def append(
        self,
        at: datetime,
        customer_id: uuid.UUID,
        external_id: str,
        feature_key: str,
        requested: Decimal | None,
        decision: Decision,
        audit: EvaluationContext,
    ) -> None:
        """Record one check: seven references stored, nothing built."""
        count = self._count
        if count + len(self._returned) >= self._size_max:
            self._drop_oldest()
            count = self._count
        slot = (self._head + count) % self._size_max
        if slot == len(self._at):  # past the slots so far: add as many again, up to the bound
            self._grow()
        self._at[slot] = at
        self._customer[slot] = customer_id
        self._external[slot] = external_id
        self._feature[slot] = feature_key
        self._requested[slot] = requested
        self._decision[slot] = decision
        self._audit[slot] = audit
        self._count = count + 1
        self._appended += 1

    def _grow(self) -> None:
        more = min(max(len(self._at), GROWTH_MIN), self._size_max - len(self._at))
        for part in self._parts():
            part.extend([None] * more)

    def _parts(self) -> tuple[list[Any], ...]:
        return (
            self._at, self._customer, self._external, self._feature, self._requested,
            self._decision, self._audit,
        )  # fmt: skip

    def _drop_oldest(self) -> None:
        self._dropped += 1
        if self._returned:
            self._returned.popleft()
        else:  # the ring is full: its oldest slot is the next one written, nothing to clear
            self._head = (self._head + 1) % self._size_max
            self._count -= 1

    def _take(self, slot: int) -> AuditRecord:
        """The record in `slot`, the ring's oldest, built; its slot is cleared and freed."""
        record = audit_record(
            self._at[slot],
            self._customer[slot],
            self._external[slot],
            self._feature[slot],
            self._requested[slot],
            self._decision[slot],
            self._audit[slot],
        )
        for part in self._parts():
            part[slot] = None
        self._head = (slot + 1) % self._size_max
        self._count -= 1
        return record

    def requeue(self, items: list[AuditRecord]) -> None:
        """Put back records a consumer failed to write, oldest first, ahead of newer ones;
        whatever no longer fits is dropped (and counted) from the oldest end."""
        for item in reversed(items):
            if len(self) >= self._size_max:
                self._dropped += 1
                continue
            self._returned.appendleft(item)

    def drain(self, count_max: int | None = None) -> list[AuditRecord]:
        """Remove and return up to `count_max` oldest records (all when None), built."""
        count = len(self) if count_max is None else min(count_max, len(self))
        taken: list[AuditRecord] = []
        while self._returned and len(taken) < count:
            taken.append(self._returned.popleft())
        while len(taken) < count:
            taken.append(self._take(self._head))
        return taken

    def __len__(self) -> int:
        return self._count + len(self._returned)

    def statistics(self) -> BufferStatistics:
        return BufferStatistics(
            size=len(self),
            size_max=self._size_max,
            appended=self._appended,
            dropped=self._dropped,
        )
