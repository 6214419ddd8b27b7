"""An environment's invoice and credit-note sequences (CN-20, CN-21; docs/credit-notes.md).

The sequence lives in the customer records themselves: each number is written into the fact it
numbers (`InvoiceNumbered`, `CreditNoteFinalized`), which is journalled in the record of the
customer whose turn took it. This object only remembers the highest sequence journalled, so the
next turn continues from it. A turn runs with no await between taking a number and appending its
record, and the journal loses at most a suffix in a crash, so the numbers on disk are always
1..n without a gap: a number taken by a turn that was never journalled is taken again by the
next one, and it was never answered, because replies wait until their record is durable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from allotment.domain.credit_note_facts import CreditNoteFinalized, InvoiceNumbered
from allotment.domain.credit_note_state import NumberKind
from allotment.domain.facts import Fact
from allotment.domain.numbering import DEFAULT_PREFIXES, format_number
from allotment.domain.state import CustomerState

__all__ = ("Sequences",)


class Prefixes(Protocol):
    invoice_number_prefix: str
    credit_note_number_prefix: str


class Sequences:
    """The `NumberSource` of one shard's turns."""

    __slots__ = ("_journalled", "handed", "prefixes")

    def __init__(self, prefixes: dict[NumberKind, str] | None = None) -> None:
        self.prefixes = dict(prefixes or DEFAULT_PREFIXES)
        self._journalled = dict.fromkeys(NumberKind, 0)  # the highest sequence in the journal
        # The highest handed out by this turn, or None while it has handed out none: nearly
        # every turn (each check and event) hands out none, and then need not `settle`.
        self.handed: dict[NumberKind, int] | None = None

    @classmethod
    def configured(cls, settings: Prefixes) -> Sequences:
        return cls({
            NumberKind.INVOICE: settings.invoice_number_prefix,
            NumberKind.CREDIT_NOTE: settings.credit_note_number_prefix,
        })  # fmt: skip

    def allocate(self, kind: NumberKind) -> tuple[int, str]:
        if self.handed is None:
            self.handed = dict(self._journalled)
        sequence = max(self.handed[kind], self._journalled[kind]) + 1
        self.handed[kind] = sequence
        return sequence, format_number(self.prefixes[kind], sequence)

    def last(self, kind: NumberKind) -> int:
        """The highest sequence of `kind` journalled so far."""
        return self._journalled[kind]

    def observe(self, facts: Sequence[Fact]) -> None:
        """Learn the numbers of facts being journalled, and forget what the turn handed out
        beyond them (a number taken by a turn that journalled no use of it is free again)."""
        for fact in facts:
            # Exact types (final classes): a usage fact pays two identity tests.
            if type(fact) is InvoiceNumbered:
                self._raise(fact.kind, fact.sequence)
            elif type(fact) is CreditNoteFinalized and fact.sequence is not None:
                self._raise(NumberKind.CREDIT_NOTE, fact.sequence)
        self.handed = None

    def settle(self) -> None:
        """End of a turn: numbers handed out and not journalled are taken back."""
        self.handed = None

    def recover(self, states: Iterable[CustomerState]) -> None:
        """After replay: continue from the highest sequence any customer's facts took."""
        for state in states:
            for kind, sequence in state.sequences_used.items():
                self._raise(NumberKind(kind), sequence)
        self.settle()

    def _raise(self, kind: NumberKind, sequence: int) -> None:
        self._journalled[kind] = max(self._journalled[kind], sequence)
