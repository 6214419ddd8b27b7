"""Commands: what a caller asks of one customer. A closed tagged union."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.credit_note_commands import CreditNoteCommand
from allotment.domain.credits import GrantSource
from allotment.domain.meters import CloudEventRecorded
from allotment.domain.om_commands import OpenMeterCommand
from allotment.domain.payment_records import ProviderPayment
from allotment.domain.reservation_state import Overage
from allotment.domain.state import (
    CancelMode,
    ChangeType,
    OpenCheckout,
    OpenMeterDetails,
    Profile,
)

__all__ = (
    "ApplyProviderPayment",
    "CancelScheduledChange",
    "CancelSubscription",
    "ChangePlan",
    "CloseCheckoutSession",
    "Command",
    "CommitReservation",
    "CommitUnits",
    "CostInput",
    "EvaluateEntitlement",
    "ExtendReservation",
    "GrantCredits",
    "HoldItem",
    "LinkStripeCustomer",
    "MarkInvoicePaid",
    "OpenCheckoutSession",
    "Preflight",
    "RecordCloudEvent",
    "RecordFailedPayment",
    "RecordUnappliedPayment",
    "RecordUsage",
    "RegisterCustomer",
    "ReleaseReservation",
    "Reserve",
    "RevertCancellation",
    "SetOpenMeterDetails",
    "Subscribe",
    "Tick",
)


class _Command(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="type"):
    pass


class RegisterCustomer(_Command, tag="register_customer", frozen=True, kw_only=True):
    external_id: str
    profile: Profile


class Subscribe(_Command, tag="subscribe", frozen=True, kw_only=True):
    plan_id: uuid.UUID
    grace_period_days: int = 3  # SUB-12


class MarkInvoicePaid(_Command, tag="mark_invoice_paid", frozen=True, kw_only=True):
    invoice_id: uuid.UUID


class CostInput(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    model: str
    model_provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


class RecordUsage(_Command, tag="record_usage", frozen=True, kw_only=True):
    """One usage event. `feature_key` is already resolved from featureId/featureKey, if any."""

    idempotency_key: str
    event_name: str
    occurred_at: datetime
    units: Decimal = Decimal(1)
    feature_key: str | None = None
    subscription_id: uuid.UUID | None = None
    entitlement_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    cost_amount: Decimal | None = None
    revenue_amount: Decimal | None = None
    cost_input: CostInput | None = None
    flow_id: str | None = None
    meta: dict[str, Any] | None = None


class EvaluateEntitlement(_Command, tag="evaluate_entitlement", frozen=True, kw_only=True):
    """A check (GET) when `requested_units` is None; a simulation (POST with track) otherwise."""

    feature_key: str
    requested_units: Decimal | None = None


class GrantCredits(_Command, tag="grant_credits", frozen=True, kw_only=True):
    denomination: str
    amount: Decimal
    source: GrantSource
    expires_at: datetime | None = None


class CancelSubscription(_Command, tag="cancel_subscription", frozen=True, kw_only=True):
    subscription_id: uuid.UUID
    mode: CancelMode = CancelMode.END_OF_PERIOD  # SUB-40


class RevertCancellation(_Command, tag="revert_cancellation", frozen=True, kw_only=True):
    subscription_id: uuid.UUID


class ChangePlan(_Command, tag="change_plan", frozen=True, kw_only=True):
    subscription_id: uuid.UUID
    to_plan_id: uuid.UUID
    change_type: ChangeType


class CancelScheduledChange(_Command, tag="cancel_scheduled_change", frozen=True, kw_only=True):
    subscription_id: uuid.UUID


class LinkStripeCustomer(_Command, tag="link_stripe_customer", frozen=True, kw_only=True):
    stripe_customer_id: str


class OpenCheckoutSession(_Command, tag="open_checkout", frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    checkout: OpenCheckout


class CloseCheckoutSession(_Command, tag="close_checkout", frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    session_id: str


class ApplyProviderPayment(_Command, tag="apply_provider_payment", frozen=True, kw_only=True):
    """A provider took `payment` for `invoice_id`: apply it once, or keep it unapplied."""

    invoice_id: uuid.UUID
    payment: ProviderPayment


class RecordFailedPayment(_Command, tag="record_failed_payment", frozen=True, kw_only=True):
    """A delayed payment for `invoice_id` failed: nothing was taken."""

    invoice_id: uuid.UUID
    payment: ProviderPayment


class RecordUnappliedPayment(_Command, tag="record_unapplied_payment", frozen=True, kw_only=True):
    """The provider took `payment` for no invoice of this customer: keep it, with `reason`."""

    payment: ProviderPayment
    reason: str


class HoldItem(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One feature and the units to hold of it (RSV-4)."""

    feature_key: str
    units: Decimal


class Reserve(_Command, tag="reserve", frozen=True, kw_only=True):
    """Hold every item or none, in one turn (RSV-1..RSV-6)."""

    reservation_id: str
    items: tuple[HoldItem, ...]
    ttl_seconds: int = 3600  # RSV-2
    overage: Overage = Overage.ALLOW
    event_name: str | None = None
    meta: dict[str, Any] | None = None


class CommitUnits(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    feature_key: str | None  # None: the reservation's only item (RSV-18)
    usage_units: Decimal


class CommitReservation(_Command, tag="commit_reservation", frozen=True, kw_only=True):
    """Record the real usage of named items and release their holds (RSV-12..RSV-18).
    `event_keys` are the items' event keys, by feature key, claimed by the runtime before the
    turn; `duplicate_keys` those another event had claimed already (RSV-13)."""

    reservation_id: str
    items: tuple[CommitUnits, ...]
    occurred_at: datetime
    event_key: str | None = None  # the body's eventIdempotencyKey
    event_keys: dict[str, str] = msgspec.field(default_factory=dict)
    duplicate_keys: frozenset[str] = frozenset()
    cost_input: CostInput | None = None
    meta: dict[str, Any] | None = None


class ReleaseReservation(_Command, tag="release_reservation", frozen=True, kw_only=True):
    reservation_id: str
    feature_key: str | None = None  # None: every HELD item (RSV-19)


class ExtendReservation(_Command, tag="extend_reservation", frozen=True, kw_only=True):
    reservation_id: str
    ttl_seconds: int  # RSV-20


class Preflight(_Command, tag="preflight", frozen=True, kw_only=True):
    """A pre-flight that reserves (RSV-36): the answer for `reserve.items`, and their hold,
    all or none, in one turn. A pre-flight that does not reserve is a read, not a command."""

    reserve: Reserve


class RecordCloudEvent(_Command, tag="record_cloud_event", frozen=True, kw_only=True):
    """Journal one CloudEvent attributed to this customer (OM-8); the usage it makes is run as
    `RecordUsage` commands in the same record (`cloud_usage.usage_commands`)."""

    event: CloudEventRecorded


class SetOpenMeterDetails(_Command, tag="set_openmeter_details", frozen=True, kw_only=True):
    """Replace the customer's OpenMeter details (OM-20..OM-24); the shard has checked that no
    other live customer holds its subject keys (OM-21)."""

    details: OpenMeterDetails


class Tick(_Command, tag="tick", frozen=True, kw_only=True):
    """Apply whatever is due by now and nothing else (SCH-1)."""


Command = (
    RegisterCustomer
    | Subscribe
    | MarkInvoicePaid
    | RecordUsage
    | EvaluateEntitlement
    | GrantCredits
    | CancelSubscription
    | RevertCancellation
    | ChangePlan
    | CancelScheduledChange
    | LinkStripeCustomer
    | OpenCheckoutSession
    | CloseCheckoutSession
    | ApplyProviderPayment
    | RecordFailedPayment
    | RecordUnappliedPayment
    | Reserve
    | CommitReservation
    | ReleaseReservation
    | ExtendReservation
    | Preflight
    | RecordCloudEvent
    | SetOpenMeterDetails
    | Tick
    | CreditNoteCommand  # issue 18 (credit_note_commands.py)
    | OpenMeterCommand  # issue 17 (om_commands.py)
)
