"""When holds expire (RSV-23) and which settled reservations a settlement forgets (RSV-27)."""

from __future__ import annotations

from datetime import datetime

from allotment.domain.reservation_facts import ReservationExpired
from allotment.domain.reservation_state import SETTLED_KEPT
from allotment.domain.state import CustomerState

__all__ = ("earliest_hold_expiry", "expiry_fact", "forgets")


def earliest_hold_expiry(state: CustomerState) -> tuple[str, datetime] | None:
    """The HELD reservation that expires first, and when; ties by the oldest."""
    expiries = state.hold_expiries
    if not expiries:
        return None
    reservation_id = min(expiries, key=expiries.__getitem__)
    return reservation_id, expiries[reservation_id]


def expiry_fact(state: CustomerState, reservation_id: str) -> ReservationExpired:
    """The expiry of a HELD reservation, stamped with the instant it was due (SCH-1)."""
    return ReservationExpired(
        at=state.hold_expiries[reservation_id],
        reservation_id=reservation_id,
        forgets=forgets(state),
    )


def forgets(state: CustomerState) -> tuple[str, ...]:
    """The settled reservations to forget when one more settles: the oldest, beyond
    SETTLED_KEPT."""
    excess = len(state.settled_order) + 1 - SETTLED_KEPT
    return tuple(state.settled_order[:excess]) if excess > 0 else ()
