"""The Tanso Client API's shapes, as the client reads and sends them.

Python names are snake_case; `rename="camel"` maps them to the wire's camelCase. Amounts are
`Decimal` (the server sends exact JSON numbers; nothing passes through float). Reading is
lenient on purpose: unknown fields are ignored, so a newer server with more fields does not
break an older client. Absent fields (the server omits nulls, API-6) read as None.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import msgspec

__all__ = (
    "CheckoutSession",
    "ClientPlan",
    "CostInput",
    "Credit",
    "CreditGrant",
    "CreditPool",
    "CreditTransaction",
    "Customer",
    "CustomerSummary",
    "Entitlement",
    "EventBatchItem",
    "EventResult",
    "Feature",
    "FeaturePricing",
    "Invoice",
    "InvoiceItem",
    "PlanCreditAllocation",
    "PlanSummary",
    "PlanWithFeatures",
    "PriceTier",
    "ScheduledChange",
    "Simulation",
    "SubscribedCustomer",
    "Subscription",
    "Usage",
    "UsageEvent",
)

T = TypeVar("T")


class Model(msgspec.Struct, kw_only=True, frozen=True, rename="camel"):
    """A value the server sent: immutable, camelCase on the wire."""


class Envelope(Model, Generic[T], kw_only=True, frozen=True):
    """`{"success": true, "data": ...}`, the envelope of every answer (API-3)."""

    success: bool
    data: T


class OptionalEnvelope(Model, Generic[T], kw_only=True, frozen=True):
    """The envelope of an answer whose `data` may be absent (ingestEvent's plain 201)."""

    success: bool
    data: T | None = None


class CustomerSummary(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    external_client_customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    created_at: datetime
    modified_at: datetime


class PlanSummary(Model, kw_only=True, frozen=True):
    """A plan as a subscription or invoice embeds it."""

    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    price_amount: Decimal
    interval_months: str
    billing_timing: str
    status: str
    metadata: dict[str, Any] | None = None
    created_at: datetime
    modified_at: datetime


class ScheduledChange(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    type: str
    subscription_id: uuid.UUID
    from_plan: PlanSummary | None = None
    to_plan: PlanSummary | None = None
    status: str
    effective_at: datetime
    created_at: datetime


class Subscription(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    is_active: bool
    interval_months: str
    customer: CustomerSummary | None = None
    plan: PlanSummary | None = None
    grace_period_days: int
    current_period_start: datetime
    current_period_end: datetime
    cancel_mode: str | None = None
    cancel_effective_at: datetime | None = None
    cancelled_at: datetime | None = None
    billing_anchor_day: int
    metadata: dict[str, Any] | None = None
    scheduled_change: ScheduledChange | None = None


class CreditGrant(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    amount: Decimal
    remaining: Decimal
    source: str
    subscription_id: uuid.UUID | None = None
    granted_at: datetime
    expires_at: datetime | None = None


class CreditTransaction(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    pool_id: uuid.UUID
    type: str
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal
    created_at: datetime
    description: str
    grant_id: uuid.UUID | None = None
    event_idempotency_key: str | None = None
    subscription_id: uuid.UUID | None = None


class CreditPool(Model, kw_only=True, frozen=True):
    """A credit pool. `reserved` and `available` (balance − reserved) come with the
    reservation extension; a server without it leaves them None."""

    id: uuid.UUID
    name: str
    denomination: str
    currency: str
    balance: Decimal
    total_granted: Decimal
    total_consumed: Decimal
    total_expired: Decimal
    total_reversed: Decimal
    hard_limit: bool | None = None
    status: str
    rollover_policy: str
    rollover_cap: Decimal | None = None
    customer_id: uuid.UUID
    metadata: dict[str, Any] | None = None
    created_at: datetime
    modified_at: datetime
    grants: list[CreditGrant] | None = None
    transactions: list[CreditTransaction] | None = None
    reserved: Decimal | None = None
    available: Decimal | None = None


class Customer(Model, kw_only=True, frozen=True):
    external_client_customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    created_at: datetime
    modified_at: datetime
    subscriptions: list[Subscription]
    credit_pools: list[CreditPool] | None = None


class InvoiceItem(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    invoice_id: uuid.UUID
    charge_amount: Decimal
    description: str
    created_at: datetime
    modified_at: datetime


class Invoice(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    due_date: datetime
    subscription: Subscription | None = None
    created_at: datetime
    modified_at: datetime
    metadata: dict[str, Any] | None = None
    items: list[InvoiceItem] | None = None


class SubscribedCustomer(Model, kw_only=True, frozen=True):
    """createSubscription's answer: the subscription and its first invoice."""

    subscription: Subscription
    invoice: Invoice
    metadata: dict[str, Any] | None = None


class Usage(Model, kw_only=True, frozen=True):
    """The usage block; `reserved` (units held, excluded from `remaining`) comes with the
    reservation extension."""

    used: Decimal
    limit: Decimal | None = None
    remaining: Decimal | None = None
    reserved: Decimal | None = None


class Simulation(Model, kw_only=True, frozen=True):
    requested_usage: Decimal
    projected_usage: Decimal
    projected_remaining: Decimal | None = None
    would_exceed_limit: bool


class Credit(Model, kw_only=True, frozen=True):
    denomination: str
    balance: Decimal
    total_granted: Decimal
    total_consumed: Decimal
    hard_limit: bool
    reserved: Decimal | None = None
    available: Decimal | None = None


class _Reason(Model, kw_only=True, frozen=True):
    description: str


class _EntitlementMeta(Model, kw_only=True, frozen=True):
    reason: _Reason | None = None


class Entitlement(Model, kw_only=True, frozen=True):
    """An entitlement decision (check, evaluate or simulate)."""

    reference_customer_id: str
    feature_key: str
    is_allowed: bool
    flow_id: str | None = None
    meta: _EntitlementMeta | None = None
    usage: Usage | None = None
    simulation: Simulation | None = None
    credit: Credit | None = None

    @property
    def reason(self) -> str | None:
        """Why it is not allowed (None when allowed or when the server gave no reason)."""
        if self.meta is None or self.meta.reason is None:
            return None
        return self.meta.reason.description


class EventResult(Model, kw_only=True, frozen=True):
    """ingestEvent's answer. `usage_limit_exceeded` is true when the event took usage to or
    over a limit (the event is still recorded, EVT-43)."""

    usage_limit_exceeded: bool | None = None
    message: str | None = None
    cost_known: bool | None = None


class _BatchError(Model, kw_only=True, frozen=True):
    message: str
    detail: str | None = None


class EventBatchItem(Model, kw_only=True, frozen=True):
    """One event's outcome in a batch, with the status `POST /events` would have given."""

    status: int
    success: bool
    data: EventResult | None = None
    error: _BatchError | None = None


class CheckoutSession(Model, kw_only=True, frozen=True):
    url: str  # "" when the invoice is already paid (STR-3)


class ClientPlan(Model, kw_only=True, frozen=True):
    """A plan as listPlans shows it (interval in months as a number, with its currency)."""

    id: uuid.UUID
    key: str
    name: str
    description: str | None = None
    price_amount: Decimal
    currency: str
    interval_months: int
    billing_timing: str
    metadata: dict[str, Any] | None = None


class PriceTier(Model, kw_only=True, frozen=True):
    up_to: Decimal  # Decimal("Infinity") for the last tier
    price_per_unit: Decimal
    flat_fee: Decimal | None = None


class FeaturePricing(Model, kw_only=True, frozen=True):
    model: str
    price_per_unit: Decimal | None = None
    unit_label: str | None = None
    max_usage: Decimal | None = None
    reset_mode: str
    tiers: list[PriceTier] | None = None


class Feature(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    name: str
    key: str
    description: str | None = None
    pricing_type: str
    pricing: FeaturePricing | None = None


class PlanCreditAllocation(Model, kw_only=True, frozen=True):
    id: uuid.UUID
    credit_model_id: uuid.UUID
    credit_model_name: str
    denomination: str
    credit_amount: Decimal
    grant_expires_months: int | None = None
    hard_limit: bool | None = None
    created_at: datetime


class PlanWithFeatures(Model, kw_only=True, frozen=True):
    plan: ClientPlan
    features: list[Feature]
    credit_allocations: list[PlanCreditAllocation] | None = None


class Request(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    """A value the client sends: None fields are left out of the body."""


class CostInput(Request, kw_only=True):
    """Tokens of a model call, priced by the server's model price table."""

    model: str
    model_provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


class UsageEvent(Request, kw_only=True):
    """One usage event for `ingest_event` or `ingest_events` (ingestEvent's body)."""

    event_name: str
    customer_reference_id: str | None = None
    customer_id: uuid.UUID | None = None
    feature_key: str | None = None
    feature_id: uuid.UUID | None = None
    usage_units: Decimal | int | None = None
    event_idempotency_key: str | None = None
    occurred_at: datetime | None = None
    flow_id: str | None = None
    subscription_id: uuid.UUID | None = None
    cost_amount: Decimal | None = None
    revenue_amount: Decimal | None = None
    cost_input: CostInput | None = None
    meta: dict[str, Any] | None = None
