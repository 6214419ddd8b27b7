"""The journal port. Facts are appended before a state change is acknowledged."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from allotment.domain.catalog_facts import CatalogFact
from allotment.domain.facts import Fact

__all__ = ("Journal",)


class Journal(Protocol):
    """An append-only log of facts per customer.

    `append` is synchronous and cheap (it buffers); `wait_durable` returns once everything up to
    `position` survives a crash, in whatever sense the implementation's durability mode gives.
    """

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int: ...

    def append_catalog(self, fact: CatalogFact) -> int: ...

    async def wait_durable(self, position: int) -> None: ...

    @property
    def position(self) -> int:
        """The last position handed out."""
        ...

    @property
    def durable_position(self) -> int: ...

    @property
    def failure(self) -> BaseException | None: ...

    @property
    def pending_bytes(self) -> int: ...
