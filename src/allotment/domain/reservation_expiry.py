"""When holds expire (RSV-23), which settled reservations a settlement forgets (RSV-27), and
the notification an expiry raises (WHK-E40)."""

from __future__ import annotations

from datetime import datetime

from allotment.domain.notification_types import ExpiredHold, ReservationHoldExpired
from allotment.domain.reservation_facts import ReservationExpired
from allotment.domain.reservation_state import SETTLED_KEPT, HoldStatus
from allotment.domain.state import CustomerState

__all__ = ("earliest_hold_expiry", "expired_notice", "expiry_fact", "forgets")


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


def expired_notice(state: CustomerState, fact: ReservationExpired) -> ReservationHoldExpired:
    """WHK-E40: the notice of `fact`, just applied to `state`. The items it expired are those
    EXPIRED at its instant: an item is settled once (RSV-24), so none expired before. A
    reservation already forgotten again in the same turn (more than SETTLED_KEPT settled in one
    catch-up, RSV-27) is named by its id alone."""
    reservation = state.reservations.get(fact.reservation_id)
    if reservation is None:
        return ReservationHoldExpired(
            reservation_id=fact.reservation_id, created_at=None, expired_at=fact.at,
            event_name=None, items=(),
        )  # fmt: skip
    items = tuple(
        ExpiredHold(
            feature_key=item.feature_key,
            units=item.units,
            credits=item.credits,
            denomination=item.denomination,
        )
        for item in reservation.items
        if item.status is HoldStatus.EXPIRED and item.settled_at == fact.at
    )
    return ReservationHoldExpired(
        reservation_id=reservation.id,
        created_at=reservation.created_at,
        expired_at=fact.at,
        event_name=reservation.event_name,
        items=items,
    )
