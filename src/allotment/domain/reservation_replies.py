"""Replies of the reservation commands (RSV-*): values, like every reply."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from allotment.domain.decisions import Decision
from allotment.domain.reservation_state import ItemSettlement, Reservation

__all__ = ("Committed", "ItemDecision", "ReservationShown", "ReserveDenied", "Reserved")


class ItemDecision(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One item of a request, decided after the items before it (RSV-4)."""

    feature_key: str
    units: Decimal
    decision: Decision
    credits: Decimal | None = None  # what it would hold of `denomination`'s pool (RSV-6)
    denomination: str | None = None


class Reserved(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="reserved"):
    reservation: Reservation
    repeated: bool = False  # RSV-1: the same id and body again


class ReserveDenied(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="reserve_denied"):
    """RSV-5: nothing is held."""

    items: tuple[ItemDecision, ...]


class Committed(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="committed"):
    """The items this commit named, each with what was recorded (RSV-12..RSV-16)."""

    reservation: Reservation
    settlements: dict[str, ItemSettlement]

    @property
    def hold_expired(self) -> bool:
        return any(s.hold_expired for s in self.settlements.values())


class ReservationShown(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="reservation"):
    """A release or an extension: the reservation as it is now."""

    reservation: Reservation
