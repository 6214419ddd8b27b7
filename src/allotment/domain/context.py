"""What a turn may know besides the state: the time, the catalog, prices and fresh ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.domain.facts import Fact
from allotment.domain.numbering import Counter, NumberSource
from allotment.domain.replies import Reply

__all__ = ("Outcome", "TurnContext")


class TurnContext(msgspec.Struct, frozen=True):
    """Inputs of `decide` other than state and command.

    `new_id` is injected so that the domain stays deterministic under test and replay; facts
    carry every id they mint, so `evolve` never calls it. A struct, not a frozen dataclass:
    every turn builds one, and a frozen dataclass sets each field through `object.__setattr__`
    (change one with `msgspec.structs.replace`).
    """

    now: datetime
    catalog: Catalog
    prices: PriceTable
    new_id: Callable[[], uuid.UUID] = uuid.uuid4
    payment_terms_days: int = 0  # INV-5 account setting
    # CN-20: the environment's invoice and credit-note sequences. Like `new_id`, injected; the
    # runtime's source takes back at the end of a turn whatever the turn did not journal.
    numbers: NumberSource = msgspec.field(default_factory=Counter)


class Outcome(msgspec.Struct, frozen=True):
    """The result of `decide`: facts to apply (in order), and the reply to send."""

    reply: Reply
    facts: list[Fact] = msgspec.field(default_factory=list)
