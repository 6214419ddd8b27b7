"""Gap-free numbers for invoices and credit notes (CN-20..CN-23).

The domain asks `TurnContext.numbers` for the next sequence of a kind, and writes the number
into the fact it numbers; the runtime's source (runtime/numbering.py) keeps an environment's
sequences, learns from every committed fact what was used, and forgets after each turn what
was handed out but not journalled. `Counter` is the plain source of tests and simulations.
"""

from __future__ import annotations

from typing import Protocol

from allotment.domain.credit_note_state import NumberKind

__all__ = ("DEFAULT_PREFIXES", "Counter", "NumberSource", "format_number")

DEFAULT_PREFIXES = {NumberKind.INVOICE: "INV-", NumberKind.CREDIT_NOTE: "CN-"}
DIGITS = 6  # INV-000001: zero-padded, and longer once a sequence passes 999999


def format_number(prefix: str, sequence: int) -> str:
    return f"{prefix}{sequence:0{DIGITS}d}"


class NumberSource(Protocol):
    def allocate(self, kind: NumberKind) -> tuple[int, str]:
        """The next sequence of `kind` and its number, as the turn will journal it."""
        ...


class Counter:
    """Sequences held in this object alone: every allocation is taken, none is given back."""

    __slots__ = ("_next", "_prefixes")

    def __init__(self, prefixes: dict[NumberKind, str] | None = None) -> None:
        self._prefixes = dict(prefixes or DEFAULT_PREFIXES)
        self._next = dict.fromkeys(NumberKind, 1)

    def allocate(self, kind: NumberKind) -> tuple[int, str]:
        sequence = self._next[kind]
        self._next[kind] = sequence + 1
        return sequence, format_number(self._prefixes[kind], sequence)
