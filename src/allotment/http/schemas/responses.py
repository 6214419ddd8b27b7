"""Response structs of the Tanso Client API (and allotment's extensions), named and shaped
exactly as tanso-openapi.json: the DTOs and the `ApiResponse*` envelopes around them.

Responses omit null fields (API-6) through `omit_defaults`; arrays that must appear even when
empty have no default.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.http.catalog_document import ClientPriceTierDto

__all__ = (
    "ApiResponseCreditPoolList",
    "ApiResponseCustomerClientResponse",
    "ApiResponseEntitlementResponse",
    "ApiResponseError",
    "ApiResponseEventBatch",
    "ApiResponseEventIngestionResponse",
    "ApiResponseInvoiceList",
    "ApiResponsePlanList",
    "ApiResponseStripeCheckoutSession",
    "ApiResponseSubscribedCustomerResponse",
    "ApiResponseVoid",
    "ClientFeatureDto",
    "ClientFeaturePricingDto",
    "ClientPlanDto",
    "ClientPlanFeatureLinkedDto",
    "CreditDto",
    "CreditGrantDto",
    "CreditPoolDto",
    "CreditTransactionDto",
    "CustomerClientResponse",
    "CustomerDto",
    "DenialReasonDto",
    "EntitlementMetaDto",
    "EntitlementResponse",
    "ErrorObject",
    "EventBatchItemResult",
    "EventBatchResponse",
    "EventIngestionResponse",
    "InvoiceDto",
    "InvoiceItemDto",
    "PlanCreditAllocationDto",
    "PlanDto",
    "SimulationDto",
    "StripeCheckoutSessionResponse",
    "SubscribedCustomerResponse",
    "SubscriptionDto",
    "SubscriptionScheduledChangeDto",
    "UsageDto",
)


class _Dto(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class ErrorObject(_Dto, kw_only=True):
    message: str
    detail: str | None = None


class ApiResponseError(_Dto, kw_only=True):
    success: bool  # always false; required so that omit_defaults keeps it (API-3)
    error: ErrorObject


class ApiResponseVoid(msgspec.Struct, kw_only=True):
    success: bool = True


class CustomerDto(_Dto, kw_only=True):
    id: uuid.UUID
    externalClientCustomerId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    phoneNumber: str | None = None
    createdAt: datetime
    modifiedAt: datetime


class PlanDto(_Dto, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    priceAmount: Decimal
    intervalMonths: str
    billingTiming: str
    status: str
    metadata: dict[str, Any] | None = None
    createdAt: datetime
    modifiedAt: datetime


class SubscriptionScheduledChangeDto(_Dto, kw_only=True):
    id: uuid.UUID
    type: str
    subscriptionId: uuid.UUID
    fromPlan: PlanDto | None = None
    toPlan: PlanDto | None = None
    status: str
    effectiveAt: datetime
    createdAt: datetime


class SubscriptionDto(_Dto, kw_only=True):
    id: uuid.UUID
    isActive: bool
    intervalMonths: str
    customer: CustomerDto | None = None
    plan: PlanDto | None = None
    gracePeriodDays: int
    currentPeriodStart: datetime
    currentPeriodEnd: datetime
    cancelMode: str | None = None
    cancelEffectiveAt: datetime | None = None
    cancelledAt: datetime | None = None
    billingAnchorDay: int
    metadata: dict[str, Any] | None = None
    scheduledChange: SubscriptionScheduledChangeDto | None = None


class CreditGrantDto(_Dto, kw_only=True):
    """Extension: a live grant, listed in burn-down order (CRD-31)."""

    id: uuid.UUID
    amount: Decimal
    remaining: Decimal
    source: str
    subscriptionId: uuid.UUID | None = None
    grantedAt: datetime
    expiresAt: datetime | None = None


class CreditTransactionDto(_Dto, kw_only=True):
    """Extension: one immutable ledger entry (CRD-20)."""

    id: uuid.UUID
    poolId: uuid.UUID
    type: str
    amount: Decimal
    balanceBefore: Decimal
    balanceAfter: Decimal
    createdAt: datetime
    description: str
    grantId: uuid.UUID | None = None
    eventIdempotencyKey: str | None = None
    subscriptionId: uuid.UUID | None = None


class CreditPoolDto(_Dto, kw_only=True):
    id: uuid.UUID
    name: str
    denomination: str
    currency: str
    balance: Decimal
    totalGranted: Decimal
    totalConsumed: Decimal
    totalExpired: Decimal
    totalReversed: Decimal
    hardLimit: bool | None = None
    status: str
    rolloverPolicy: str
    rolloverCap: Decimal | None = None
    customerId: uuid.UUID
    metadata: dict[str, Any] | None = None
    createdAt: datetime
    modifiedAt: datetime
    reserved: Decimal | None = None  # extension, RSV-9: credits held by open reservations
    available: Decimal | None = None  # extension, RSV-9: balance - reserved
    grants: list[CreditGrantDto] | None = None  # extension, with ?expand=grants
    transactions: list[CreditTransactionDto] | None = None  # extension, ?expand=transactions


class CustomerClientResponse(_Dto, kw_only=True):
    externalClientCustomerId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    createdAt: datetime
    modifiedAt: datetime
    subscriptions: list[SubscriptionDto]  # always present, [] when none (CUS-12)
    creditPools: list[CreditPoolDto] | None = None


class InvoiceItemDto(_Dto, kw_only=True):
    id: uuid.UUID
    invoiceId: uuid.UUID
    chargeAmount: Decimal
    description: str
    createdAt: datetime
    modifiedAt: datetime


class InvoiceDto(_Dto, kw_only=True):
    id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    dueDate: datetime
    subscription: SubscriptionDto | None = None
    createdAt: datetime
    modifiedAt: datetime
    metadata: dict[str, Any] | None = None
    items: list[InvoiceItemDto] | None = None


class SubscribedCustomerResponse(_Dto, kw_only=True):
    subscription: SubscriptionDto
    invoice: InvoiceDto
    metadata: dict[str, Any] | None = None


class DenialReasonDto(_Dto, kw_only=True):
    description: str


class EntitlementMetaDto(_Dto, kw_only=True):
    reason: DenialReasonDto | None = None


class UsageDto(_Dto, kw_only=True):
    used: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None
    reserved: Decimal | None = None  # extension, RSV-8: units held by open reservations


class SimulationDto(_Dto, kw_only=True):
    requestedUsage: Decimal
    projectedUsage: Decimal
    projectedRemaining: Decimal | None = None
    wouldExceedLimit: bool


class CreditDto(_Dto, kw_only=True):
    denomination: str
    balance: Decimal
    totalGranted: Decimal
    totalConsumed: Decimal
    hardLimit: bool
    reserved: Decimal | None = None  # extension, RSV-9: credits held by open reservations
    available: Decimal | None = None  # extension, RSV-9: balance - reserved


class EntitlementResponse(_Dto, kw_only=True):
    referenceCustomerId: str
    featureKey: str
    isAllowed: bool
    flowId: str | None = None
    meta: EntitlementMetaDto | None = None
    usage: UsageDto | None = None
    simulation: SimulationDto | None = None
    credit: CreditDto | None = None


class EventIngestionResponse(_Dto, kw_only=True):
    usageLimitExceeded: bool | None = None
    message: str | None = None
    costKnown: bool | None = None  # extension, OPS-D5: `false` when the model has no price


class ClientPlanDto(_Dto, kw_only=True):
    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    priceAmount: Decimal
    currency: str
    intervalMonths: int
    billingTiming: str
    metadata: dict[str, Any] | None = None


class ClientFeaturePricingDto(_Dto, kw_only=True):
    model: str
    pricePerUnit: Decimal | None = None
    unitLabel: str | None = None
    maxUsage: Decimal | None = None
    resetMode: str
    tiers: list[ClientPriceTierDto] | None = None


class ClientFeatureDto(_Dto, kw_only=True):
    id: uuid.UUID
    name: str
    key: str
    description: str | None = None
    pricingType: str
    pricing: ClientFeaturePricingDto | None = None


class PlanCreditAllocationDto(_Dto, kw_only=True):
    id: uuid.UUID
    creditModelId: uuid.UUID
    creditModelName: str
    denomination: str
    creditAmount: Decimal
    grantExpiresMonths: int | None = None
    hardLimit: bool | None = None
    createdAt: datetime


class ClientPlanFeatureLinkedDto(_Dto, kw_only=True):
    plan: ClientPlanDto
    features: list[ClientFeatureDto]
    creditAllocations: list[PlanCreditAllocationDto] | None = None


class ApiResponseCustomerClientResponse(_Dto, kw_only=True):
    success: bool
    data: CustomerClientResponse


class ApiResponseSubscribedCustomerResponse(_Dto, kw_only=True):
    success: bool
    data: SubscribedCustomerResponse


class ApiResponseEntitlementResponse(_Dto, kw_only=True):
    success: bool
    data: EntitlementResponse


class ApiResponseEventIngestionResponse(_Dto, kw_only=True):
    success: bool
    data: EventIngestionResponse | None = None


class ApiResponsePlanList(_Dto, kw_only=True):
    success: bool
    data: list[ClientPlanFeatureLinkedDto]


class ApiResponseInvoiceList(_Dto, kw_only=True):
    success: bool
    data: list[InvoiceDto]


class ApiResponseCreditPoolList(_Dto, kw_only=True):
    success: bool
    data: list[CreditPoolDto]


class StripeCheckoutSessionResponse(_Dto, kw_only=True):
    url: str  # "" when the invoice is already paid (STR-3)


class EventBatchItemResult(_Dto, kw_only=True):
    """One event's outcome, as `POST /events` would have answered it."""

    status: int
    success: bool
    data: EventIngestionResponse | None = None
    error: ErrorObject | None = None


class EventBatchResponse(_Dto, kw_only=True):
    results: list[EventBatchItemResult]


class ApiResponseEventBatch(_Dto, kw_only=True):
    success: bool
    data: EventBatchResponse


class ApiResponseStripeCheckoutSession(_Dto, kw_only=True):
    success: bool
    data: StripeCheckoutSessionResponse
