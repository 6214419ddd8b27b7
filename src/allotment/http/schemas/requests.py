"""Request structs of the Tanso Client API (and allotment's extensions), named and shaped
exactly as tanso-openapi.json.

Requests forbid unknown fields and carry the spec's limits as `Meta` constraints; numeric
limits on decimals are checked in `http/validation.py` because msgspec constrains only
int/float.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = (
    "AdminCreditGrantRequest",
    "ClientChangeSubscriptionRequest",
    "ClientSubscriptionRequest",
    "ClockAdvanceRequest",
    "CostInputRequest",
    "CustomerRequest",
    "EntitlementEvaluationRequest",
    "EventBatchRequest",
    "EventRequest",
    "RequestContext",
    "TrackContext",
)

Str128 = Annotated[str, Meta(min_length=1, max_length=128)]
Str255 = Annotated[str, Meta(min_length=1, max_length=255)]
Text = Annotated[str, Meta(max_length=1024)]
Email = Annotated[str, Meta(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
UtcDateTime = Annotated[datetime, Meta(tz=True)]  # RFC 3339 with an offset; normalised to UTC


class _Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class CustomerRequest(_Request, kw_only=True):
    firstName: Str255
    lastName: Str255
    email: Email
    externalClientCustomerId: Str255 | None = None
    customerReferenceId: Str255 | None = None  # CUS-2 alias used by the billing guide
    phoneNumber: Annotated[str, Meta(max_length=64)] | None = None
    address: Text | None = None


class ClientSubscriptionRequest(_Request, kw_only=True):
    planId: uuid.UUID
    customerReferenceId: Str255
    gracePeriod: Annotated[int, Meta(ge=0, le=3650)] | None = None


class TrackContext(_Request, kw_only=True):
    eventName: Str128 | None = None
    usageUnits: Decimal | None = None
    meta: dict[str, Any] | None = None


class RequestContext(_Request, kw_only=True):
    idempotencyKey: Str128 | None = None
    flowId: Str128 | None = None


class EntitlementEvaluationRequest(_Request, kw_only=True):
    customerReferenceId: Str128
    featureKey: Str128
    track: TrackContext | None = None
    context: RequestContext | None = None


class CostInputRequest(_Request, kw_only=True):
    model: Str128
    modelProvider: Str128 | None = None
    inputTokens: Annotated[int, Meta(ge=0, le=10**12)] = 0
    outputTokens: Annotated[int, Meta(ge=0, le=10**12)] = 0


class EventRequest(_Request, kw_only=True):
    eventName: Str255
    eventIdempotencyKey: Annotated[str, Meta(max_length=255)] | None = None
    occurredAt: UtcDateTime | None = None
    flowId: Str128 | None = None
    featureKey: Str128 | None = None
    featureId: uuid.UUID | None = None
    customerReferenceId: Str255 | None = None
    customerId: uuid.UUID | None = None
    stripeCustomerId: Str255 | None = None
    subscriptionId: uuid.UUID | None = None
    entitlementId: uuid.UUID | None = None
    invoiceId: uuid.UUID | None = None
    costAmount: Decimal | None = None
    revenueAmount: Decimal | None = None
    costInput: CostInputRequest | None = None
    usageUnits: Decimal | None = None
    meta: dict[str, Any] | None = None


class AdminCreditGrantRequest(_Request, kw_only=True):
    customerReferenceId: Str255
    denomination: Str128
    amount: Decimal
    source: Literal["PURCHASE", "PROMOTION", "MANUAL"]
    expiresAt: UtcDateTime | None = None


class ClockAdvanceRequest(_Request, kw_only=True):
    seconds: Annotated[int, Meta(ge=0, le=100 * 366 * 86400)] | None = None
    to: UtcDateTime | None = None


class EventBatchRequest(_Request, kw_only=True):
    """Extension: many EventRequest objects; each is validated on its own."""

    events: list[msgspec.Raw]


class ClientChangeSubscriptionRequest(_Request, kw_only=True):
    changeToPlanId: uuid.UUID
    changeType: Literal["UPGRADE", "DOWNGRADE"]
