"""The last check denials of an environment, kept in memory for the console (CON-26).

Every check's audit record goes to the analytics history through a bounded buffer
(`LocalShard.audits`, ENT-30), drained at each snapshot; nothing kept the latest ones where a
request could read them. This ring holds the audit records of the last `DENIALS_MAX` denials
(the same record objects: no copy), and `of_customer` reads one customer's from it, a bounded
scan. It starts empty at each start; the analytics history keeps every record."""

from __future__ import annotations

import uuid
from collections import deque

from allotment.persistence.store_ports import AuditRecord

__all__ = ("DENIALS_MAX", "RecentDenials")

DENIALS_MAX = 4096


class RecentDenials:
    __slots__ = ("_ring",)

    def __init__(self, size_max: int = DENIALS_MAX) -> None:
        self._ring: deque[AuditRecord] = deque(maxlen=size_max)

    def append(self, record: AuditRecord) -> None:
        self._ring.append(record)

    def of_customer(self, customer_id: uuid.UUID, limit: int) -> list[AuditRecord]:
        """Up to `limit` of the customer's denials, newest first."""
        found: list[AuditRecord] = []
        for record in reversed(self._ring):
            if record.customer_id == customer_id:
                found.append(record)
                if len(found) == limit:
                    break
        return found
