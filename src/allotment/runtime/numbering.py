"""An environment's invoice and credit-note sequences (CN-20, CN-21; docs/credit-notes.md).

The sequence lives in the customer records themselves: each number is written into the fact it
numbers (`InvoiceNumbered`, `CreditNoteFinalized`), which is journalled in the record of the
customer whose turn took it. This object only remembers the highest sequence journalled, so the
next turn continues from it. A turn runs with no await between taking a number and appending its
record, and the journal loses at most a suffix in a crash, so the numbers on disk are always
1..n without a gap: a number taken by a turn that was never journalled is taken again by the
next one, and it was never answered, because replies wait until their record is durable.

Over N shards (docs/scale-out.md SCL-70..SCL-73) shard k of N takes the sequences s with
`(s - 1) mod N == k`: the residue classes are disjoint, so two shards never hand out one
number, and no shard asks another. Each shard's numbers are gap-free within its class. A
reshard to M shards starts every new shard above the highest number any old shard took (the
floor, kept in every snapshot's header), so numbers taken after it never meet one before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from allotment.domain.credit_note_facts import CreditNoteFinalized, InvoiceNumbered
from allotment.domain.credit_note_state import NumberKind
from allotment.domain.facts import Fact
from allotment.domain.numbering import DEFAULT_PREFIXES, format_number
from allotment.domain.state import CustomerState
from allotment.persistence.compact_state import Keys

__all__ = ("Sequences",)


class Prefixes(Protocol):
    invoice_number_prefix: str
    credit_note_number_prefix: str


class Sequences:
    """The `NumberSource` of one shard's turns."""

    __slots__ = ("_journalled", "handed", "offset", "prefixes", "stride")

    def __init__(
        self, prefixes: dict[NumberKind, str] | None = None, *, stride: int = 1, offset: int = 0
    ) -> None:
        assert 0 <= offset < stride
        self.prefixes = dict(prefixes or DEFAULT_PREFIXES)
        self.stride = stride  # the number of shards (SCL-70): 1 in one process
        self.offset = offset  # this shard's index: it takes s with (s - 1) % stride == offset
        self._journalled = dict.fromkeys(NumberKind, 0)  # the highest sequence in the journal
        # The highest handed out by this turn, or None while it has handed out none: nearly
        # every turn (each check and event) hands out none, and then need not `settle`.
        self.handed: dict[NumberKind, int] | None = None

    @classmethod
    def configured(cls, settings: Prefixes, shard: tuple[int, int] = (0, 1)) -> Sequences:
        """`shard` is (index, count) of the shard these sequences number for (SCL-70)."""
        index, count = shard
        prefixes = {
            NumberKind.INVOICE: settings.invoice_number_prefix,
            NumberKind.CREDIT_NOTE: settings.credit_note_number_prefix,
        }
        return cls(prefixes, stride=count, offset=index)

    def allocate(self, kind: NumberKind) -> tuple[int, str]:
        if self.handed is None:
            self.handed = dict(self._journalled)
        highest = max(self.handed[kind], self._journalled[kind])
        # SCL-70: the next sequence above `highest` in this shard's class (highest + 1 alone)
        sequence = highest + 1 + (self.offset - highest) % self.stride
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

    def taken(self) -> dict[str, int]:
        """The highest sequence of each kind journalled: a snapshot keeps it (SCL-71)."""
        return {kind.value: sequence for kind, sequence in self._journalled.items() if sequence}

    def restore(self, taken: dict[str, int]) -> None:
        """Continue above a snapshot's `taken` (numbers of customers that may live elsewhere
        since a reshard, SCL-72)."""
        for kind, sequence in taken.items():
            self._raise(NumberKind(kind), sequence)

    def recover(self, states: Iterable[CustomerState | Keys]) -> None:
        """After replay: continue from the highest sequence any customer's facts took."""
        for state in states:
            for kind, sequence in state.sequences_used.items():
                self._raise(NumberKind(kind), sequence)
        self.settle()

    def _raise(self, kind: NumberKind, sequence: int) -> None:
        self._journalled[kind] = max(self._journalled[kind], sequence)
