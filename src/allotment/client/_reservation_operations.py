"""The reservation extension's operations as `Call` values (docs/reservations.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from allotment.client._wire import Call, body_of, decode_data, segment
from allotment.client.models import CostInput, Request
from allotment.client.reservation_models import (
    CommitItem,
    CommitResult,
    HoldItem,
    Overage,
    Preflight,
    PreflightReserve,
    Reservation,
    ReservationStatus,
)

__all__ = (
    "commit_reservation",
    "extend_reservation",
    "get_reservation",
    "list_reservations",
    "preflight",
    "release_reservation",
    "reserve",
)


class _ReserveBody(Request, kw_only=True):
    customer_reference_id: str
    reservation_id: str | None = None
    feature_key: str | None = None
    units: Decimal | int | None = None
    items: list[HoldItem] | None = None
    ttl_seconds: int | None = None
    event_name: str | None = None
    overage: Overage | None = None
    meta: dict[str, Any] | None = None


def reserve(
    customer_reference_id: str,
    feature_key: str | None = None,
    units: Decimal | int | None = None,
    *,
    items: Sequence[HoldItem] | None = None,
    reservation_id: str | None = None,
    ttl_seconds: int | None = None,
    event_name: str | None = None,
    overage: Overage | None = None,
    meta: dict[str, Any] | None = None,
) -> Call[Reservation]:
    body = _ReserveBody(
        customer_reference_id=customer_reference_id, reservation_id=reservation_id,
        feature_key=feature_key, units=units, items=list(items) if items is not None else None,
        ttl_seconds=ttl_seconds, event_name=event_name, overage=overage, meta=meta,
    )  # fmt: skip
    return Call("POST", "/reservations", decode_data(Reservation), body_of(body))


def get_reservation(
    reservation_id: str, *, customer_reference_id: str | None = None
) -> Call[Reservation]:
    params = {"customerReferenceId": customer_reference_id} if customer_reference_id else {}
    path = f"/reservations/{segment(reservation_id)}"
    return Call("GET", path, decode_data(Reservation), params=params)


class _CommitBody(Request, kw_only=True):
    usage_units: Decimal | int | None = None
    feature_key: str | None = None
    items: list[CommitItem] | None = None
    event_idempotency_key: str | None = None
    cost_input: CostInput | None = None
    occurred_at: datetime | None = None
    meta: dict[str, Any] | None = None
    customer_reference_id: str | None = None


def commit_reservation(
    reservation_id: str,
    usage_units: Decimal | int | None = None,
    *,
    feature_key: str | None = None,
    items: Sequence[CommitItem] | None = None,
    event_idempotency_key: str | None = None,
    cost_input: CostInput | None = None,
    occurred_at: datetime | None = None,
    meta: dict[str, Any] | None = None,
    customer_reference_id: str | None = None,
) -> Call[CommitResult]:
    body = _CommitBody(
        usage_units=usage_units, feature_key=feature_key,
        items=list(items) if items is not None else None,
        event_idempotency_key=event_idempotency_key, cost_input=cost_input,
        occurred_at=occurred_at, meta=meta, customer_reference_id=customer_reference_id,
    )  # fmt: skip
    path = f"/reservations/{segment(reservation_id)}/commit"
    return Call("POST", path, decode_data(CommitResult), body_of(body))


def release_reservation(
    reservation_id: str, *, feature_key: str | None = None
) -> Call[Reservation]:
    path = f"/reservations/{segment(reservation_id)}/release"
    return Call("POST", path, decode_data(Reservation), body_of({"featureKey": feature_key}))


def extend_reservation(reservation_id: str, ttl_seconds: int) -> Call[Reservation]:
    path = f"/reservations/{segment(reservation_id)}/extend"
    return Call("POST", path, decode_data(Reservation), body_of({"ttlSeconds": ttl_seconds}))


def list_reservations(
    customer_reference_id: str, *, status: ReservationStatus | None = "HELD"
) -> Call[list[Reservation]]:
    params = {"status": status} if status is not None else {}
    path = f"/customers/{segment(customer_reference_id)}/reservations"
    return Call("GET", path, decode_data(list[Reservation]), params=params)


class _PreflightBody(Request, kw_only=True):
    customer_reference_id: str
    items: list[HoldItem]
    reserve: PreflightReserve | None = None


def preflight(
    customer_reference_id: str,
    items: Sequence[HoldItem],
    *,
    reserve: PreflightReserve | None = None,
) -> Call[Preflight]:
    body = _PreflightBody(
        customer_reference_id=customer_reference_id, items=list(items), reserve=reserve
    )
    return Call("POST", "/entitlements/preflight", decode_data(Preflight), body_of(body))
