"""The in-memory journal: the file journal's twin for tests, simulation and the in-memory
server mode. It has the same positions (one per record), the same failure state, and no disk:
everything appended is durable at once, and nothing survives a restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from allotment.domain.facts import EnvironmentFact, Fact
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.ports import JournalRecord

__all__ = ("MemoryJournal",)


class MemoryJournal:
    """Keeps every record in `records` when `keep` is true; otherwise only counts positions.

    `keep=False` is the in-memory server mode: state lives in the actors and nothing is
    retained twice. `fail(error)` puts it in the failed state, as a failed disk write would.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._keep = keep
        self.records: list[JournalRecord] = []
        self._position = 0
        self._failure: BaseException | None = None

    @property
    def position(self) -> int:
        return self._position

    @property
    def durable_position(self) -> int:
        return self._position  # memory is as durable as it gets: on append

    @property
    def pending_bytes(self) -> int:
        return 0

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    def facts(self) -> Iterator[tuple[uuid.UUID, Fact]]:
        """Every customer fact kept, in order, with its customer."""
        for record in self.records:
            if record.customer_id is not None:
                yield from ((record.customer_id, fact) for fact in record.facts)

    def append(self, customer_id: uuid.UUID, facts: Sequence[Fact]) -> int:
        return self._append(JournalRecord(self._position + 1, customer_id, list(facts), []))

    def append_catalog(self, fact: EnvironmentFact) -> int:
        return self._append(JournalRecord(self._position + 1, None, [], [fact]))

    def _append(self, record: JournalRecord) -> int:
        self._check()
        if self._keep:
            self.records.append(record)
        self._position = record.position
        return record.position

    def _check(self) -> None:
        if self._failure is not None:
            error = JournalUnavailable("the journal failed; it takes nothing until reopened")
            raise error from self._failure

    async def wait_durable(self, position: int) -> None:
        if position > self._position:  # a position not handed out yet is not durable
            self._check()

    async def flush(self) -> None:
        self._check()

    async def rotate(self) -> int:
        """As the file journal's: the last position so far (there are no segments)."""
        self._check()
        return self._position

    def fail(self, error: BaseException) -> None:
        """Fail the journal as a disk error would: every later append, flush and rotate
        raises `JournalUnavailable` from `error`. Every record already appended stays
        durable (memory has no unsynced bytes)."""
        self._failure = error

    def close_after_failure(self) -> None:
        """Nothing to cut: every record appended was durable. For API parity."""
