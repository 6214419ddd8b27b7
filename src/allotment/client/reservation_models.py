"""The reservation extension's shapes (docs/reservations.md, "Wire shapes")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from allotment.client.models import Entitlement, Model, Request, Usage

__all__ = (
    "CommitItem",
    "CommitResult",
    "CommittedEvent",
    "HoldItem",
    "Money",
    "Overage",
    "Preflight",
    "PreflightItem",
    "PreflightReservation",
    "PreflightReserve",
    "Reservation",
    "ReservationItem",
    "ReservationStatus",
)

Overage = Literal["allow", "cap", "reject"]
ReservationStatus = Literal["HELD", "COMMITTED", "RELEASED", "EXPIRED"]


class HoldItem(Request, kw_only=True):
    """One feature and the units to hold of it, in a reservation of several items."""

    feature_key: str
    units: Decimal | int


class CommitItem(Request, kw_only=True):
    """The real usage of one item of a reservation."""

    feature_key: str
    usage_units: Decimal | int


class ReservationItem(Model, kw_only=True, frozen=True):
    """One feature's hold; after settling, what was asked and what was recorded."""

    feature_key: str
    units: Decimal
    status: str
    is_allowed: bool | None = None  # on a denied reserve, each item's own answer (RSV-5)
    credits: Decimal | None = None
    denomination: str | None = None
    entitlement: Entitlement | None = None
    usage_units: Decimal | None = None
    recorded_units: Decimal | None = None
    cut_units: Decimal | None = None
    event_idempotency_key: str | None = None
    settled_at: datetime | None = None


class Reservation(Model, kw_only=True, frozen=True):
    """A reservation, or (with `is_allowed` false, status DENIED) the refusal of one: nothing
    is held then, and `reason` says why."""

    id: str
    is_allowed: bool
    status: str
    items: list[ReservationItem]
    customer_reference_id: str | None = None
    feature_key: str | None = None
    units: Decimal | None = None
    overage: str | None = None
    event_name: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    settled_at: datetime | None = None
    reason: str | None = None
    meta: dict[str, Any] | None = None
    entitlement: Entitlement | None = None


class CommittedEvent(Model, kw_only=True, frozen=True):
    """The usage event a commit recorded for one item, with `POST /events`' answer fields."""

    feature_key: str
    usage_units: Decimal
    recorded_units: Decimal
    cut_units: Decimal
    event_idempotency_key: str | None = None
    usage_limit_exceeded: bool | None = None
    message: str | None = None
    cost_known: bool | None = None


class CommitResult(Model, kw_only=True, frozen=True):
    """A commit's answer (the same again for a repeated commit)."""

    reservation: Reservation
    hold_expired: bool
    events: list[CommittedEvent]


class PreflightReserve(Request, kw_only=True):
    """Hold every item of a pre-flight, or none, in the same turn (RSV-36)."""

    reservation_id: str
    ttl_seconds: int | None = None
    overage: Overage | None = None


class Money(Model, kw_only=True, frozen=True):
    """An amount in a currency; the wire sends it as a decimal string (RSV-33)."""

    amount: Decimal
    currency: str


class PreflightItem(Model, kw_only=True, frozen=True):
    """One item's decision, usage after the whole request, and estimated charge."""

    feature_key: str
    units: Decimal
    is_allowed: bool
    estimated_charge: Decimal
    currency: str | None = None
    entitlement: Entitlement | None = None
    usage_after: Usage | None = None
    credits: Decimal | None = None
    billable_units: Decimal | None = None


class PreflightReservation(Model, kw_only=True, frozen=True):
    """What a pre-flight's reserve did (RSV-36): HELD, or DENIED with nothing held. Its
    items are the pre-flight's; `hold(reservation.id)` reads the reservation in full."""

    id: str
    is_allowed: bool
    status: str
    overage: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None


class Preflight(Model, kw_only=True, frozen=True):
    """A pre-flight's answer: all items or none (RSV-35), with the total the next invoice
    would grow by (RSV-31, RSV-32) and, with `reserve`, the reservation (RSV-36)."""

    customer_reference_id: str
    is_allowed: bool
    items: list[PreflightItem]
    estimated_totals: list[Money]
    estimated_total: Money | None = None
    reason: str | None = None
    reservation: PreflightReservation | None = None
