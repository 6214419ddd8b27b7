"""Facts: what a turn decided, as the journal will store it. A closed tagged union.

Tags are explicit and stable so that renaming a class never breaks a journal written before.
Facts never alias state: `evolve` builds its own objects from them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.catalog import RolloverPolicy
from allotment.domain.catalog_facts import CatalogUpdated, FeatureAutoCreated
from allotment.domain.cost import PricesReplaced
from allotment.domain.credit_note_facts import (
    CreditNoteCreated,
    CreditNoteFinalized,
    CreditNoteVoided,
    InvoiceNumbered,
    RefundRequested,
    RefundSettled,
)
from allotment.domain.credits import CreditTransaction, GrantSource
from allotment.domain.meters import CloudEventRecorded, MeterDefined, MeterDeleted
from allotment.domain.notification_types import Notification
from allotment.domain.om_facts import (
    CreditsRestored,
    EntitlementCreated,
    EntitlementDeleted,
    EntitlementReset,
    EntitlementUsed,
    GrantActivated,
    GrantIssued,
    GrantRecurred,
    GrantVoided,
)
from allotment.domain.om_notify_rules import NotificationRuleSet
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExpired,
    ReservationExtended,
    ReservationHeld,
    ReservationReleased,
)
from allotment.domain.state import (
    CustomerSource,
    Invoice,
    InvoiceStatus,
    OpenCheckout,
    OpenMeterDetails,
    Profile,
    Subscription,
)

__all__ = (
    "CatalogVersionHeld",
    "CheckoutClosed",
    "CheckoutOpened",
    "CloudEventRecorded",
    "CreditNoteCreated",
    "CreditNoteFinalized",
    "CreditNoteVoided",
    "CreditPoolOpened",
    "CreditsDebited",
    "CreditsExpired",
    "CreditsGranted",
    "CreditsRestored",
    "CreditsReversed",
    "CustomerCreated",
    "CustomerOpenMeterSet",
    "CustomerProfileSet",
    "EntitlementCreated",
    "EntitlementDeleted",
    "EntitlementReset",
    "EntitlementUsed",
    "EnvironmentFact",
    "Fact",
    "GrantActivated",
    "GrantIssued",
    "GrantRecurred",
    "GrantVoided",
    "InvoiceIssued",
    "InvoiceNumbered",
    "InvoiceRevised",
    "InvoiceStatusChanged",
    "KeysClaimed",
    "NotificationRaised",
    "PaymentRecorded",
    "RefundRequested",
    "RefundSettled",
    "ReservationCommitted",
    "ReservationExpired",
    "ReservationExtended",
    "ReservationHeld",
    "ReservationReleased",
    "StripeCustomerLinked",
    "SubscriptionChanged",
    "SubscriptionStarted",
    "UsageBilled",
    "UsageRecorded",
)


class _Fact(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    at: datetime


class CustomerCreated(_Fact, tag="customer_created", frozen=True, kw_only=True):
    customer_id: uuid.UUID
    external_id: str | None
    source: CustomerSource
    profile: Profile = Profile()
    stripe_customer_id: str | None = None


class CustomerProfileSet(_Fact, tag="customer_profile_set", frozen=True, kw_only=True):
    """CUS-6: an auto-created customer registered through the API."""

    external_id: str
    profile: Profile


class CustomerOpenMeterSet(_Fact, tag="customer_openmeter_set", frozen=True, kw_only=True):
    """The customer's OpenMeter details replaced whole: created or updated through
    `/api/v1/customers` (OM-20..OM-23), or deleted there (`details.deleted_at`, OM-24).
    Subject keys are unique among an environment's live customers (OM-21)."""

    details: OpenMeterDetails


class SubscriptionStarted(_Fact, tag="subscription_started", frozen=True, kw_only=True):
    subscription: Subscription


class InvoiceIssued(_Fact, tag="invoice_issued", frozen=True, kw_only=True):
    invoice: Invoice


class InvoiceStatusChanged(_Fact, tag="invoice_status_changed", frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    status: InvoiceStatus


class CreditPoolOpened(_Fact, tag="credit_pool_opened", frozen=True, kw_only=True):
    pool_id: uuid.UUID
    denomination: str
    name: str
    currency: str
    hard_limit: bool | None
    rollover_policy: RolloverPolicy
    rollover_cap: Decimal | None


class CreditsGranted(_Fact, tag="credits_granted", frozen=True, kw_only=True):
    denomination: str
    grant_id: uuid.UUID
    amount: Decimal
    source: GrantSource
    expires_at: datetime | None
    subscription_id: uuid.UUID | None
    period_key: str | None  # CRD-12: "DENOM@periodStart" for plan allocations
    transaction: CreditTransaction
    top_up_key: str | None = None  # MNY-A1: "DENOM@periodStart" for a plan-change top-up
    priority: int = 0  # OM-84: an OpenMeter grant's burn priority; Tanso grants keep 0


class CreditsDebited(_Fact, tag="credits_debited", frozen=True, kw_only=True):
    denomination: str
    grant_id: uuid.UUID
    transaction: CreditTransaction


class CreditsReversed(_Fact, tag="credits_reversed", frozen=True, kw_only=True):
    """A clawback of a plan grant's remaining credits (CRD-43)."""

    denomination: str
    grant_id: uuid.UUID
    transaction: CreditTransaction


class SubscriptionChanged(_Fact, tag="subscription_changed", frozen=True, kw_only=True):
    """The subscription as it is from now on: period advanced, plan switched, change
    scheduled or cancelled, cancellation scheduled, reverted or taking effect."""

    subscription: Subscription


class InvoiceRevised(_Fact, tag="invoice_revised", frozen=True, kw_only=True):
    """An invoice replaced whole: a PENDING invoice finalised with its lines (INV-30, INV-31)."""

    invoice: Invoice


class UsageBilled(_Fact, tag="usage_billed", frozen=True, kw_only=True):
    """Unbilled usage of one feature in buckets starting before `through` is now invoiced."""

    subscription_id: uuid.UUID
    feature_key: str
    through: datetime
    invoice_id: uuid.UUID | None


class StripeCustomerLinked(_Fact, tag="stripe_customer_linked", frozen=True, kw_only=True):
    stripe_customer_id: str


class CheckoutOpened(_Fact, tag="checkout_opened", frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    checkout: OpenCheckout


class CheckoutClosed(_Fact, tag="checkout_closed", frozen=True, kw_only=True):
    """The session expired or was abandoned: the next checkout creates a fresh one."""

    invoice_id: uuid.UUID
    session_id: str


class CatalogVersionHeld(_Fact, tag="catalog_version_held", frozen=True, kw_only=True):
    """A shard of several now holds the catalog of this version (docs/scale-out.md SCL-77):
    journalled after each broadcast change, so a shard restarted alone still refuses calls
    stamped with an older one. It changes no state the domain reads."""

    version: int


class PaymentRecorded(_Fact, tag="payment_recorded", frozen=True, kw_only=True):
    """A provider payment judged: applied, failed or unapplied (MNY-C2..C4). In a customer's
    record, it joins `CustomerState.payments`; as an environment fact (no customer owns it),
    it joins the environment's unapplied payments."""

    record: PaymentRecord


class KeysClaimed(_Fact, tag="keys_claimed", frozen=True, kw_only=True):
    """Only when an environment is split over shards (docs/scale-out.md SCL-80..SCL-84): keys
    the environment holds once (event idempotency keys, CloudEvent (source, id) keys,
    reservation ids), each claimed on the shard its hash names for the shard whose customer
    uses it, before that customer's turn. No billing meaning: an environment fact, in the
    home shard's journal only so that the claim outlives a crash."""

    # (key, the claimant shard's index, the lease's number: one per request holding it)
    claims: tuple[tuple[str, int, int], ...] = ()
    returned: tuple[tuple[str, int, int], ...] = ()  # leases given back by refused turns


class CreditsExpired(_Fact, tag="credits_expired", frozen=True, kw_only=True):
    denomination: str
    grant_id: uuid.UUID
    transaction: CreditTransaction


class UsageRecorded(_Fact, tag="usage_recorded", frozen=True, kw_only=True):
    """One accepted usage event (EVT-*), with everything analytics needs."""

    idempotency_key: str
    event_name: str
    occurred_at: datetime
    units: Decimal
    feature_key: str | None = None
    subscription_id: uuid.UUID | None = None
    period_start: datetime | None = None  # the usage bucket; None when not counted
    billable_units: Decimal = Decimal(0)  # units not covered by credits (INV-37)
    over_limit: bool = False
    cost_amount: Decimal | None = None
    revenue_amount: Decimal | None = None
    model: str | None = None
    model_provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    flow_id: str | None = None
    entitlement_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    meta: dict[str, Any] | None = None
    # MNY-B6: dated before the subscription's first period; billed in the first period's
    # bucket, counted toward no limit. Older journals never set it.
    before_start: bool = False
    # MNY-B3: the sub-quantum credit remainder of (pool, feature) after this event, when the
    # feature is credit-backed and the customer has the pool; None leaves it as it was.
    credit_pool: str | None = None
    credit_remainder: Decimal | None = None


class NotificationRaised(_Fact, tag="notification_raised", frozen=True, kw_only=True):
    """A notification decided in the turn that committed its cause, and journalled with it
    (issue 15 item 4; docs/webhooks.md, "Event types"). `notification_id` is the stable root
    of the webhook-id: it never changes across retries, restarts or replays."""

    notification_id: uuid.UUID
    payload: Notification


Fact = (
    CustomerCreated
    | CustomerProfileSet
    | SubscriptionStarted
    | InvoiceIssued
    | InvoiceStatusChanged
    | CreditPoolOpened
    | CreditsGranted
    | CreditsDebited
    | CreditsExpired
    | CreditsReversed
    | SubscriptionChanged
    | InvoiceRevised
    | UsageBilled
    | UsageRecorded
    | StripeCustomerLinked
    | CheckoutOpened
    | CheckoutClosed
    | PaymentRecorded
    | ReservationHeld  # RSV-25
    | ReservationCommitted
    | ReservationReleased
    | ReservationExtended
    | ReservationExpired
    | NotificationRaised
    | CustomerOpenMeterSet
    | CloudEventRecorded
    | EntitlementCreated  # issue 17, OM-80..OM-119
    | EntitlementDeleted
    | EntitlementUsed
    | EntitlementReset
    | GrantIssued
    | GrantActivated
    | GrantVoided
    | GrantRecurred
    | CreditsRestored
    | CreditNoteCreated  # issue 18, CN-*
    | CreditNoteFinalized
    | CreditNoteVoided
    | InvoiceNumbered
    | RefundRequested
    | RefundSettled
)

EnvironmentFact = (
    CatalogUpdated
    | CatalogVersionHeld
    | FeatureAutoCreated
    | PaymentRecorded
    | PricesReplaced
    | MeterDefined
    | MeterDeleted
    | CloudEventRecorded
    | NotificationRuleSet  # OM-140
    | KeysClaimed  # SCL-80
)
"""A fact of an environment rather than of one customer: journalled in a record of its own
(`customer_id` None) and replayed by the shard."""
