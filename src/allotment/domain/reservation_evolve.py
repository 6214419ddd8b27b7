"""Applying reservation facts to the customer state (RSV-6, RSV-24, RSV-27).

The tallies `held_units` and `held_credits` move only here, by exactly what each HELD item
holds, so they always equal the sums over HELD items (`invariants.check` proves it).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import assert_never

import msgspec

from allotment.domain.money import ZERO
from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExpired,
    ReservationExtended,
    ReservationFact,
    ReservationHeld,
    ReservationReleased,
)
from allotment.domain.reservation_state import HeldItem, HoldStatus, ItemSettlement, Reservation
from allotment.domain.state import CustomerState

__all__ = ("evolve_reservation", "settled")


def evolve_reservation(state: CustomerState, fact: ReservationFact) -> None:
    """Apply one reservation fact in place."""
    match fact:
        case ReservationHeld():
            state.reservations[fact.reservation_id] = fact.reservation
            state.hold_expiries[fact.reservation_id] = fact.reservation.expires_at
            for item in fact.reservation.items:
                _tally(state, item, +1)
        case ReservationCommitted():
            _settle(state, fact.reservation_id, fact.at, fact.settlements, None)
            _forget(state, fact.forgets)
        case ReservationReleased():
            _settle(state, fact.reservation_id, fact.at, {}, frozenset(fact.feature_keys))
            _forget(state, fact.forgets)
        case ReservationExtended():
            reservation = state.reservations[fact.reservation_id]
            state.reservations[fact.reservation_id] = msgspec.structs.replace(
                reservation, expires_at=fact.expires_at
            )
            state.hold_expiries[fact.reservation_id] = fact.expires_at
        case ReservationExpired():
            reservation = state.reservations[fact.reservation_id]
            items = tuple(
                _settled(state, item, HoldStatus.EXPIRED, fact.at)
                if item.status is HoldStatus.HELD
                else item
                for item in reservation.items
            )
            state.reservations[fact.reservation_id] = msgspec.structs.replace(
                reservation, items=items
            )
            _note_settled(state, fact.reservation_id)
            _forget(state, fact.forgets)
        case _:
            assert_never(fact)


def _settle(
    state: CustomerState,
    reservation_id: str,
    at: datetime,
    settlements: dict[str, ItemSettlement],
    released: frozenset[str] | None,
) -> None:
    reservation, leaving = settled(state.reservations[reservation_id], at, settlements, released)
    for item in leaving:  # a HELD item leaves the tallies once, whatever settles it (RSV-24)
        _tally(state, item, -1)
    state.reservations[reservation_id] = reservation
    _note_settled(state, reservation_id)


def settled(
    reservation: Reservation,
    at: datetime,
    settlements: dict[str, ItemSettlement],
    released: frozenset[str] | None,
) -> tuple[Reservation, list[HeldItem]]:
    """`reservation` with the items in `settlements` committed (an EXPIRED one only records
    its settlement, RSV-16) and the HELD items named in `released` released; and the HELD
    items this settles, which leave the tallies. Pure: a commit's reply reads it too."""
    items: list[HeldItem] = []
    leaving: list[HeldItem] = []
    for before in reservation.items:
        item = _settled_item(before, at, settlements.get(before.feature_key), released)
        if before.status is HoldStatus.HELD and item.status is not HoldStatus.HELD:
            leaving.append(before)
        items.append(item)
    return msgspec.structs.replace(reservation, items=tuple(items)), leaving


def _settled_item(
    item: HeldItem,
    at: datetime,
    settlement: ItemSettlement | None,
    released: frozenset[str] | None,
) -> HeldItem:
    if settlement is not None:
        if item.status is HoldStatus.HELD:
            return msgspec.structs.replace(
                item, status=HoldStatus.COMMITTED, settled_at=at, settlement=settlement
            )
        return msgspec.structs.replace(item, settlement=settlement, settled_at=at)
    if released and item.feature_key in released and item.status is HoldStatus.HELD:
        return msgspec.structs.replace(item, status=HoldStatus.RELEASED, settled_at=at)
    return item


def _note_settled(state: CustomerState, reservation_id: str) -> None:
    """A reservation whose last HELD item just settled leaves the expiry index and joins the
    settled ones, oldest first (RSV-27)."""
    if reservation_id not in state.hold_expiries:
        return  # settled before: a late commit after expiry (RSV-16)
    if state.reservations[reservation_id].status is not HoldStatus.HELD:
        del state.hold_expiries[reservation_id]
        state.settled_order.append(reservation_id)


def _settled(state: CustomerState, item: HeldItem, status: HoldStatus, at: datetime) -> HeldItem:
    """A HELD item leaves the tallies once, whatever settles it (RSV-24)."""
    _tally(state, item, -1)
    return msgspec.structs.replace(item, status=status, settled_at=at)


def _tally(state: CustomerState, item: HeldItem, sign: int) -> None:
    _add(state.held_units, item.feature_key, item.units * sign)
    if item.denomination is not None and item.credits is not None:
        _add(state.held_credits, item.denomination, item.credits * sign)


def _add(tally: dict[str, Decimal], key: str, amount: Decimal) -> None:
    total = tally.get(key, ZERO) + amount
    if total:
        tally[key] = total
    else:
        tally.pop(key, None)  # nothing held: no entry, so snapshots stay small


def _forget(state: CustomerState, forgets: tuple[str, ...]) -> None:
    for reservation_id in forgets:
        del state.reservations[reservation_id]
        state.settled_order.remove(reservation_id)  # the oldest: at the front
