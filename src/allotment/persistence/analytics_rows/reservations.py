"""The `reservations` table: every reservation the customers' state keeps (RSV-27), one row
per item, so `sum(held_units) ... WHERE item_status = 'HELD'` is what is held right now.

Held units are never usage (RSV-11): they live here, apart from `usage_counters` and `events`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.table import Row

__all__ = ("ReservationRow", "reservation_rows")


class ReservationRow(Row, frozen=True, gc=False):
    """One item of one reservation, with its reservation's columns repeated."""

    table = "reservations"
    reservation_id: str
    customer_id: str
    feature_key: str
    status: str  # the reservation's: HELD while any item is
    item_status: str  # HELD, COMMITTED, RELEASED or EXPIRED
    held_units: Decimal
    held_credits: Decimal | None  # credits held of `denomination`'s pool (RSV-6)
    denomination: str | None
    overage: str
    event_name: str | None
    ttl_seconds: int
    created_at: datetime
    expires_at: datetime
    settled_at: datetime | None  # the item's
    usage_units: Decimal | None  # a commit's: what the client committed
    recorded_units: Decimal | None  # what the event recorded (less under `cap`)
    cut_units: Decimal | None
    hold_expired: bool | None  # committed after the hold expired (RSV-16)
    event_key: str | None
    meta: str | None  # JSON text


def reservation_rows(state: CustomerState) -> Iterator[ReservationRow]:
    """The items of the customer's reservations, in creation order."""
    cid = str(state.id)
    for reservation in state.reservations.values():
        status = reservation.status.value
        meta = None if reservation.meta is None else msgspec.json.encode(reservation.meta).decode()
        for item in reservation.items:
            settled = item.settlement
            yield ReservationRow(
                reservation_id=reservation.id,
                customer_id=cid,
                feature_key=item.feature_key,
                status=status,
                item_status=item.status.value,
                held_units=item.units,
                held_credits=item.credits,
                denomination=item.denomination,
                overage=reservation.overage.value,
                event_name=reservation.event_name,
                ttl_seconds=reservation.ttl_seconds,
                created_at=reservation.created_at,
                expires_at=reservation.expires_at,
                settled_at=item.settled_at,
                usage_units=settled.usage_units if settled else None,
                recorded_units=settled.recorded_units if settled else None,
                cut_units=settled.cut_units if settled else None,
                hold_expired=settled.hold_expired if settled else None,
                event_key=settled.event_key if settled else None,
                meta=meta,
            )
