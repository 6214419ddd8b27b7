"""Wire structs of the multi-feature pre-flight (docs/reservations.md, RSV-30..RSV-39)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from allotment.http.schemas.requests import Str128
from allotment.http.schemas.responses import EntitlementResponse

__all__ = (
    "ApiResponsePreflight",
    "PreflightItemRequest",
    "PreflightRequest",
    "PreflightReserveRequest",
    "PreflightResponse",
)

ITEMS_MAX = 20  # RSV-3, RSV-37: as many as one reserve holds


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class PreflightItemRequest(_Request, kw_only=True):
    featureKey: Str128
    units: Decimal


class PreflightReserveRequest(_Request, kw_only=True):
    reservationId: Str128
    ttlSeconds: int = 3600  # RSV-2; its range is the reserve's to check
    overage: Literal["allow", "cap", "reject"] = "allow"  # RSV-14


class PreflightRequest(_Request, kw_only=True):
    customerReferenceId: Str128
    items: Annotated[list[PreflightItemRequest], Meta(min_length=1, max_length=ITEMS_MAX)]
    reserve: PreflightReserveRequest | None = None


class _Dto(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class MoneyDto(_Dto, kw_only=True):
    """RSV-33: an amount as a decimal string, rounded to the currency's minor unit."""

    amount: str
    currency: str


class UsageAfterDto(_Dto, kw_only=True):
    used: Decimal
    reserved: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None


class PreflightItemResponse(_Dto, kw_only=True):
    """API-6: absent rather than null: `usageAfter` for a feature that is not metered or not
    governed, `currency` when no invoice would bill the units (RSV-34)."""

    featureKey: str
    units: Decimal
    isAllowed: bool
    entitlement: EntitlementResponse
    credits: Decimal
    billableUnits: Decimal
    estimatedCharge: str
    usageAfter: UsageAfterDto | None = None
    currency: str | None = None


class PreflightReservationDto(_Dto, kw_only=True):
    """What the reserve did (RSV-36): HELD, or DENIED with nothing held."""

    id: str
    isAllowed: bool
    status: str
    overage: str | None = None
    createdAt: datetime | None = None
    expiresAt: datetime | None = None


class PreflightResponse(_Dto, kw_only=True):
    """API-6: `reason` absent when allowed, `estimatedTotal` when the items bill in several
    currencies or none (RSV-33), `reservation` without `reserve`."""

    customerReferenceId: str
    isAllowed: bool
    estimatedTotals: list[MoneyDto]
    items: list[PreflightItemResponse]
    reason: str | None = None
    estimatedTotal: MoneyDto | None = None
    reservation: PreflightReservationDto | None = None


class ApiResponsePreflight(_Dto, kw_only=True):
    success: bool
    data: PreflightResponse
