"""In-memory journals: one that keeps every fact (tests, replay checks), one that keeps none.

Neither survives a restart. The file journal with group commit replaces them in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from allotment.domain.catalog_facts import CatalogFact
from allotment.domain.facts import Fact

__all__ = ("MemoryJournal",)


class MemoryJournal:
    """Keeps `(customer_id, fact)` records in order when `keep` is true; otherwise only counts.

    `keep=False` is the in-memory server mode: state lives in the actors and nothing is
    retained twice.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._keep = keep
        self.records: list[tuple[uuid.UUID, Fact]] = []
        self.catalog_records: list[CatalogFact] = []
        self.position = 0
        self.failure: BaseException | None = None  # memory never fails to write
        self.pending_bytes = 0

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int:
        if self._keep:
            self.records.extend((customer_id, fact) for fact in facts)
        self.position += len(facts)
        return self.position

    def append_catalog(self, fact: CatalogFact) -> int:
        if self._keep:
            self.catalog_records.append(fact)
        self.position += 1
        return self.position

    @property
    def durable_position(self) -> int:
        return self.position

    async def wait_durable(self, position: int) -> None:
        del position  # memory is as durable as it gets
