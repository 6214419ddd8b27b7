"""What a turn may know besides the state: the time, the catalog, prices and fresh ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.domain.facts import Fact
from allotment.domain.numbering import Counter, NumberSource
from allotment.domain.replies import Reply

__all__ = ("Outcome", "TurnContext")


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Inputs of `decide` other than state and command.

    `new_id` is injected so that the domain stays deterministic under test and replay; facts
    carry every id they mint, so `evolve` never calls it.
    """

    now: datetime
    catalog: Catalog
    prices: PriceTable
    new_id: Callable[[], uuid.UUID] = uuid.uuid4
    payment_terms_days: int = 0  # INV-5 account setting
    # CN-20: the environment's invoice and credit-note sequences. Like `new_id`, injected; the
    # runtime's source takes back at the end of a turn whatever the turn did not journal.
    numbers: NumberSource = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of `decide`: facts to apply (in order), and the reply to send."""

    reply: Reply
    facts: list[Fact] = field(default_factory=list)
