"""Facts of reservations (RSV-25): what reserve, commit, release, extend and expiry decided.

Tags are explicit and stable, like every fact's. A settling fact names the settled
reservations it makes the customer forget (RSV-27), so replay forgets the same ones.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from allotment.domain.reservation_state import ItemSettlement, Reservation

__all__ = (
    "ReservationCommitted",
    "ReservationExpired",
    "ReservationExtended",
    "ReservationFact",
    "ReservationHeld",
    "ReservationReleased",
)


class _ReservationFact(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    at: datetime
    reservation_id: str


class ReservationHeld(_ReservationFact, tag="reservation_held", frozen=True, kw_only=True):
    reservation: Reservation


class ReservationCommitted(
    _ReservationFact, tag="reservation_committed", frozen=True, kw_only=True
):
    """Items committed, by feature key; each item's usage is a `UsageRecorded` of the same
    turn (RSV-12). An item already EXPIRED keeps its status (RSV-16)."""

    settlements: dict[str, ItemSettlement]
    forgets: tuple[str, ...] = ()


class ReservationReleased(_ReservationFact, tag="reservation_released", frozen=True, kw_only=True):
    feature_keys: tuple[str, ...]  # the items released
    forgets: tuple[str, ...] = ()


class ReservationExtended(_ReservationFact, tag="reservation_extended", frozen=True, kw_only=True):
    expires_at: datetime


class ReservationExpired(_ReservationFact, tag="reservation_expired", frozen=True, kw_only=True):
    """Every item still HELD expires; `at` is the instant it was due (SCH-1)."""

    forgets: tuple[str, ...] = ()


ReservationFact = (
    ReservationHeld
    | ReservationCommitted
    | ReservationReleased
    | ReservationExtended
    | ReservationExpired
)
