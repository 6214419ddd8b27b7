"""Wire structs of the reservations extension (docs/reservations.md): requests forbid unknown
fields like every request; responses omit what is unset."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from allotment.http.schemas.requests import CostInputRequest, Str128, Str255, UtcDateTime
from allotment.http.schemas.responses import EntitlementResponse

__all__ = (
    "ApiResponseReservation",
    "ApiResponseReservationCommit",
    "ApiResponseReservationList",
    "CommitItemRequest",
    "HoldItemRequest",
    "ReservationCommitEventDto",
    "ReservationCommitRequest",
    "ReservationCommitResponse",
    "ReservationDto",
    "ReservationExtendRequest",
    "ReservationItemDto",
    "ReservationReleaseRequest",
    "ReservationRequest",
)


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class _Dto(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class HoldItemRequest(_Request, kw_only=True):
    featureKey: Str128
    units: Decimal


class ReservationRequest(_Request, kw_only=True):
    """RSV-1..RSV-3: `featureKey` + `units`, or `items`."""

    customerReferenceId: Str255
    featureKey: Str128 | None = None
    units: Decimal | None = None
    items: list[HoldItemRequest] | None = None
    reservationId: Str128 | None = None
    ttlSeconds: int | None = None
    eventName: Str255 | None = None
    overage: Literal["allow", "cap", "reject"] | None = None
    meta: dict[str, Any] | None = None


class CommitItemRequest(_Request, kw_only=True):
    featureKey: Str128
    usageUnits: Decimal


class ReservationCommitRequest(_Request, kw_only=True):
    """RSV-12..RSV-18: `usageUnits` (with an optional `featureKey`), or `items`."""

    usageUnits: Decimal | None = None
    featureKey: Str128 | None = None
    items: list[CommitItemRequest] | None = None
    eventIdempotencyKey: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    costInput: CostInputRequest | None = None
    occurredAt: UtcDateTime | None = None
    meta: dict[str, Any] | None = None
    customerReferenceId: Str255 | None = None


class ReservationReleaseRequest(_Request, kw_only=True):
    featureKey: Str128 | None = None
    customerReferenceId: Str255 | None = None


class ReservationExtendRequest(_Request, kw_only=True):
    ttlSeconds: int
    customerReferenceId: Str255 | None = None


class ReservationItemDto(_Dto, kw_only=True):
    featureKey: str
    units: Decimal
    status: str
    credits: Decimal | None = None
    denomination: str | None = None
    isAllowed: bool | None = None  # set on a denied reserve (RSV-5)
    entitlement: EntitlementResponse | None = None
    usageUnits: Decimal | None = None  # after a commit (RSV-12)
    recordedUnits: Decimal | None = None
    cutUnits: Decimal | None = None
    eventIdempotencyKey: str | None = None
    settledAt: datetime | None = None


class ReservationDto(_Dto, kw_only=True):
    id: str
    customerReferenceId: str | None = None
    isAllowed: bool
    status: str
    reason: str | None = None
    featureKey: str | None = None  # the single item's
    units: Decimal | None = None
    overage: str | None = None
    eventName: str | None = None
    createdAt: datetime | None = None
    expiresAt: datetime | None = None
    settledAt: datetime | None = None
    meta: dict[str, Any] | None = None
    items: list[ReservationItemDto]
    entitlement: EntitlementResponse | None = None


class ReservationCommitEventDto(_Dto, kw_only=True):
    """One recorded event, with `POST /events`' response fields (RSV-12)."""

    featureKey: str
    usageUnits: Decimal
    recordedUnits: Decimal
    cutUnits: Decimal
    eventIdempotencyKey: str
    usageLimitExceeded: bool | None = None
    message: str | None = None
    costKnown: bool | None = None


class ReservationCommitResponse(_Dto, kw_only=True):
    reservation: ReservationDto
    holdExpired: bool
    events: list[ReservationCommitEventDto]


class ApiResponseReservation(_Dto, kw_only=True):
    success: bool
    data: ReservationDto


class ApiResponseReservationCommit(_Dto, kw_only=True):
    success: bool
    data: ReservationCommitResponse


class ApiResponseReservationList(_Dto, kw_only=True):
    success: bool
    data: list[ReservationDto]
