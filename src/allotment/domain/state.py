"""The customer aggregate: profile, subscriptions, invoices, usage counters and credit pools.

`CustomerState` is a mutable container owned by exactly one actor and changed only by
`evolve`. Entities that replies hand out (Subscription, Invoice) are frozen and replaced whole;
the hot, per-event parts (usage counters, pools) are updated in place, because copying the
aggregate on every event would cost more than the whole entitlement check.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.credit_note_state import CreditNote, InvoiceLedger
from allotment.domain.credits import CreditPool
from allotment.domain.notice_marks import NoticeMarks
from allotment.domain.om_state import OmEntitlement
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.reservation_state import Reservation

__all__ = (
    "PAYABLE",
    "SETTLED",
    "AccessState",
    "CancelMode",
    "ChangeStatus",
    "ChangeType",
    "CustomerSource",
    "CustomerState",
    "Invoice",
    "InvoiceItem",
    "InvoiceStatus",
    "InvoiceType",
    "OpenCheckout",
    "OpenMeterDetails",
    "PlanSegment",
    "Profile",
    "ScheduledChange",
    "Subscription",
    "UsageCounter",
)


class CustomerSource(enum.StrEnum):
    API = "API"
    EVENT_AUTO_CREATED = "EVENT_AUTO_CREATED"


class AccessState(enum.StrEnum):
    """SUB-3. Only ACTIVE grants entitlements."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    ENDED = "ENDED"


class CancelMode(enum.StrEnum):
    IMMEDIATE = "IMMEDIATE"
    END_OF_PERIOD = "END_OF_PERIOD"


class ChangeType(enum.StrEnum):
    UPGRADE = "UPGRADE"
    DOWNGRADE = "DOWNGRADE"


class ChangeStatus(enum.StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class InvoiceStatus(enum.StrEnum):
    PENDING = "PENDING"
    DUE = "DUE"
    PAST_DUE = "PAST_DUE"
    PAID = "PAID"
    VOID = "VOID"
    CANCELLED = "CANCELLED"
    CANCELLED_PROCESSED = "CANCELLED_PROCESSED"
    ADJUSTMENT_OPEN = "ADJUSTMENT_OPEN"
    ADJUSTMENT_PAID = "ADJUSTMENT_PAID"


PAYABLE = frozenset((InvoiceStatus.DUE, InvoiceStatus.PAST_DUE, InvoiceStatus.ADJUSTMENT_OPEN))
"""An invoice in these statuses awaits payment: it can be marked paid (INV-20) or paid through
checkout (STR-4), an immediate cancellation voids it (SUB-46 a), and analytics lists it as
receivable."""

SETTLED = frozenset((InvoiceStatus.PAID, InvoiceStatus.ADJUSTMENT_PAID))
"""An invoice in these statuses has been paid: paying it again changes nothing (INV-21)."""


class InvoiceType(enum.StrEnum):
    INITIAL = "INITIAL"
    RENEWAL = "RENEWAL"
    ADJUSTMENT = "ADJUSTMENT"
    CREDIT = "CREDIT"


class Profile(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    address: str | None = None


class OpenMeterDetails(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What an OpenMeter customer has beyond an allotment customer (OM-20): its display name,
    the CloudEvent subjects attributed to it (`usageAttribution.subjectKeys`, OM-8), and the
    time it was deleted through the OpenMeter API (OM-24)."""

    name: str
    subject_keys: tuple[str, ...] = ()
    description: str | None = None
    currency: str | None = None
    metadata: dict[str, str] | None = None
    primary_email: str | None = None
    deleted_at: datetime | None = None


class ScheduledChange(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    type: ChangeType
    from_plan_id: uuid.UUID
    to_plan_id: uuid.UUID
    status: ChangeStatus
    effective_at: datetime
    created_at: datetime


class PlanSegment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """The plan in force from `start` within the current period (INV-52 prorates by these)."""

    plan_id: uuid.UUID
    start: datetime


class Subscription(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    plan_id: uuid.UUID
    interval_months: int
    billing_anchor_day: int
    grace_period_days: int
    first_period_start: datetime  # origin of the period grid; plan changes keep it
    current_period_start: datetime
    current_period_end: datetime
    initial_invoice_id: uuid.UUID
    prepaid: bool  # a paid IN_ADVANCE start: no access until the initial invoice is paid
    access: AccessState  # derived from invoices (SUB-3); cached because every check reads it
    created_at: datetime
    modified_at: datetime
    cancel_mode: CancelMode | None = None
    cancel_effective_at: datetime | None = None
    cancelled_at: datetime | None = None
    scheduled_change: ScheduledChange | None = None  # PENDING only; history lives in `changes`
    changes: tuple[ScheduledChange, ...] = ()  # every change ever made, in order
    plan_segments: tuple[PlanSegment, ...] = ()  # the current period's plans, oldest first
    ended_at: datetime | None = None
    credit_periods_granted: frozenset[str] = frozenset()  # CRD-12 keys "DENOM@periodStart"
    # MNY-A1: what plan allocations (the period's grant and plan-change top-ups) have granted,
    # by the same keys; rebuilt from CreditsGranted on replay, so older journals recover it
    allocation_granted: dict[str, Decimal] = msgspec.field(default_factory=dict)
    active_since: datetime | None = None  # when a payment last restored access (MNY-A5)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.ended_at is None


class InvoiceItem(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    charge_amount: Decimal
    description: str
    created_at: datetime


class Invoice(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    id: uuid.UUID
    subscription_id: uuid.UUID
    type: InvoiceType
    status: InvoiceStatus
    amount: Decimal
    currency: str
    due_date: datetime
    period_start: datetime
    period_end: datetime
    items: tuple[InvoiceItem, ...]
    created_at: datetime
    modified_at: datetime
    plan_id: uuid.UUID | None = None  # the plan an INITIAL/RENEWAL invoice bills (CRD-12)


class OpenCheckout(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A hosted checkout session open for one invoice (STR-5: reused until it expires)."""

    session_id: str
    url: str
    expires_at: datetime | None = None


class UsageCounter(msgspec.Struct, kw_only=True):
    """Usage of one feature under one subscription, bucketed by the period containing each
    event's `occurredAt` (ENT-20, AMB-23).

    `used` feeds limits; `unbilled` holds the units not covered by credits that no finalised
    invoice has billed yet (INV-30, INV-37); `billed` the units finalised invoices billed, per
    period, so late usage is priced on top of them (MNY-B1). Usage dated before the
    subscription's first period is billed with the first period but counts toward no limit
    (MNY-B6): `early` holds those units, which position an accumulating ladder (INV-34).
    """

    used: dict[datetime, Decimal] = msgspec.field(default_factory=dict)
    unbilled: dict[datetime, Decimal] = msgspec.field(default_factory=dict)
    billed: dict[datetime, Decimal] = msgspec.field(default_factory=dict)
    early: Decimal = Decimal(0)


class CustomerState(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    external_id: str | None
    source: CustomerSource
    created_at: datetime
    modified_at: datetime
    profile: Profile = Profile()
    stripe_customer_id: str | None = None
    subscriptions: dict[uuid.UUID, Subscription] = msgspec.field(default_factory=dict)
    invoices: dict[uuid.UUID, Invoice] = msgspec.field(default_factory=dict)
    pools: dict[str, CreditPool] = msgspec.field(default_factory=dict)  # by denomination
    usage: dict[uuid.UUID, dict[str, UsageCounter]] = msgspec.field(default_factory=dict)
    last_event_at: datetime | None = None
    next_due_at: datetime | None = None  # cached `schedule.next_due`; checked on every turn
    journal_position: int = 0  # the last journal record applied; set by the runtime
    checkouts: dict[uuid.UUID, OpenCheckout] = msgspec.field(default_factory=dict)  # by invoice
    checkout_generation: dict[uuid.UUID, int] = msgspec.field(default_factory=dict)  # closed ones
    # Every provider payment reported for this customer, by checkout session (MNY-C2..C4).
    payments: dict[str, PaymentRecord] = msgspec.field(default_factory=dict)
    # RSV-27: open reservations and the last settled ones, by id, in creation order; and the
    # tallies of what the HELD items hold (RSV-6), so every check reads them in O(1).
    reservations: dict[str, Reservation] = msgspec.field(default_factory=dict)
    held_units: dict[str, Decimal] = msgspec.field(default_factory=dict)  # by feature key
    held_credits: dict[str, Decimal] = msgspec.field(default_factory=dict)  # by denomination
    hold_expiries: dict[str, datetime] = msgspec.field(default_factory=dict)  # HELD ones (RSV-23)
    settled_order: list[str] = msgspec.field(default_factory=list)  # oldest first (RSV-27)
    # What notifications so far remember so each fires once (WHK-E2, WHK-E12; docs/webhooks.md)
    notices: NoticeMarks = msgspec.field(default_factory=NoticeMarks)
    # OpenMeter's view of the customer (issue 16, OM-20..OM-25): the CloudEvent subjects
    # attributed to it, and what only OpenMeter's `Customer` carries. Older states decode
    # with the defaults.
    openmeter: OpenMeterDetails | None = None
    # OpenMeter entitlements (issue 17, OM-80..OM-119), live and soft-deleted, by id, in
    # creation order. Older states decode empty.
    entitlements: dict[str, OmEntitlement] = msgspec.field(default_factory=dict)
    # Credit notes (issue 18, docs/credit-notes.md), by id in creation order; their idempotency
    # keys (CN-12); what notes and numbers added to each invoice (CN-5, CN-20); and the highest
    # sequence this customer's facts took of each kind, from which a recovered environment
    # resumes its sequences (CN-21). Older states decode empty.
    credit_notes: dict[uuid.UUID, CreditNote] = msgspec.field(default_factory=dict)
    credit_note_keys: dict[str, uuid.UUID] = msgspec.field(default_factory=dict)
    invoice_ledgers: dict[uuid.UUID, InvoiceLedger] = msgspec.field(default_factory=dict)
    sequences_used: dict[str, int] = msgspec.field(default_factory=dict)

    def live_subscriptions(self) -> list[Subscription]:
        """Live subscriptions, oldest first (CUS-12); dicts keep creation order."""
        return [s for s in self.subscriptions.values() if s.live]
