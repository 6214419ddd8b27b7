"""What a notification says: one small frozen struct per event type of docs/webhooks.md.

Domain values only (snake_case, Decimal, UUID, datetime); the edge package
`allotment.webhooks` renders them on the wire. Each carries everything its payload shows, so
rendering needs no state. Tags are explicit and stable: they are journalled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from allotment.domain.notice_marks import (
    BalanceLevel,
    NoticeMarks,
    forget_past_periods,
    threshold_key,
)
from allotment.domain.om_notify_notices import (
    EntitlementBalanceThreshold,
    EntitlementResetNotice,
    remember_threshold,
)
from allotment.domain.state import Invoice, Subscription

__all__ = (
    "CreditBalanceDepleted",
    "CreditBalanceLow",
    "CreditBalanceRecovered",
    "CreditGrantExpired",
    "EntitlementBalanceThreshold",
    "EntitlementResetNotice",
    "ExpiredHold",
    "InvoiceCreated",
    "InvoicePaid",
    "InvoicePastDue",
    "InvoiceVoided",
    "Notification",
    "ReservationHoldExpired",
    "SubscriptionActivated",
    "SubscriptionCancellationScheduled",
    "SubscriptionEnded",
    "SubscriptionPlanChanged",
    "SubscriptionRenewed",
    "SubscriptionSuspended",
    "UsageThresholdCrossed",
    "WebhookNotification",
    "remember",
)


class _Notice(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="kind"):
    pass


class UsageThresholdCrossed(_Notice, tag="usage_threshold", frozen=True, kw_only=True):
    """WHK-E1: `used` reached `percent` of the link's max_usage in the period."""

    subscription_id: uuid.UUID
    plan_key: str | None
    feature_key: str
    percent: int
    period_start: datetime
    period_end: datetime
    used: Decimal  # after the event that crossed
    limit: Decimal


class _PoolNotice(_Notice, frozen=True, kw_only=True):
    pool_id: uuid.UUID
    denomination: str
    balance: Decimal
    low_threshold: Decimal | None  # None: the pool has no low-balance threshold


class CreditBalanceLow(_PoolNotice, tag="credit_balance_low", frozen=True, kw_only=True):
    """WHK-E10."""


class CreditBalanceDepleted(_PoolNotice, tag="credit_balance_depleted", frozen=True, kw_only=True):
    """WHK-E11."""


class CreditBalanceRecovered(
    _PoolNotice, tag="credit_balance_recovered", frozen=True, kw_only=True
):
    """WHK-E13: the balance rose out of a notified low or depleted level, to `level`."""

    level: BalanceLevel


class CreditGrantExpired(_Notice, tag="credit_grant_expired", frozen=True, kw_only=True):
    """WHK-E15."""

    pool_id: uuid.UUID
    denomination: str
    grant_id: uuid.UUID
    expired_amount: Decimal
    balance: Decimal  # the pool's balance right after the expiry


class _InvoiceNotice(_Notice, frozen=True, kw_only=True):
    invoice: Invoice


class InvoiceCreated(_InvoiceNotice, tag="invoice_created", frozen=True, kw_only=True):
    """WHK-E20."""


class InvoicePaid(_InvoiceNotice, tag="invoice_paid", frozen=True, kw_only=True):
    """WHK-E21."""


class InvoicePastDue(_InvoiceNotice, tag="invoice_past_due", frozen=True, kw_only=True):
    """WHK-E22."""


class InvoiceVoided(_InvoiceNotice, tag="invoice_voided", frozen=True, kw_only=True):
    """WHK-E23."""


class _SubscriptionNotice(_Notice, frozen=True, kw_only=True):
    subscription: Subscription
    plan_key: str | None


class SubscriptionActivated(
    _SubscriptionNotice, tag="subscription_activated", frozen=True, kw_only=True
):
    """WHK-E30."""


class SubscriptionSuspended(
    _SubscriptionNotice, tag="subscription_suspended", frozen=True, kw_only=True
):
    """WHK-E31."""


class SubscriptionRenewed(
    _SubscriptionNotice, tag="subscription_renewed", frozen=True, kw_only=True
):
    """WHK-E32."""

    previous_period_start: datetime


class SubscriptionPlanChanged(
    _SubscriptionNotice, tag="subscription_plan_changed", frozen=True, kw_only=True
):
    """WHK-E33."""

    from_plan_id: uuid.UUID
    from_plan_key: str | None


class SubscriptionCancellationScheduled(
    _SubscriptionNotice, tag="subscription_cancellation_scheduled", frozen=True, kw_only=True
):
    """WHK-E34."""


class SubscriptionEnded(_SubscriptionNotice, tag="subscription_ended", frozen=True, kw_only=True):
    """WHK-E35."""


class ExpiredHold(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One item of a reservation that expired: what it held and no longer holds."""

    feature_key: str
    units: Decimal
    credits: Decimal | None = None  # the credits it held of `denomination`'s pool (RSV-6)
    denomination: str | None = None


class ReservationHoldExpired(_Notice, tag="reservation_expired", frozen=True, kw_only=True):
    """WHK-E40: a reservation's hold lapsed (RSV-23) with these items still HELD; their units
    and credits are free again. `expired_at` is the instant the hold was due to expire."""

    reservation_id: str
    created_at: datetime | None  # None only when the turn already forgot it (RSV-27)
    expired_at: datetime
    event_name: str | None
    items: tuple[ExpiredHold, ...]


WebhookNotification = (
    UsageThresholdCrossed
    | CreditBalanceLow
    | CreditBalanceDepleted
    | CreditBalanceRecovered
    | CreditGrantExpired
    | InvoiceCreated
    | InvoicePaid
    | InvoicePastDue
    | InvoiceVoided
    | SubscriptionActivated
    | SubscriptionSuspended
    | SubscriptionRenewed
    | SubscriptionPlanChanged
    | SubscriptionCancellationScheduled
    | SubscriptionEnded
    | ReservationHoldExpired
)
"""allotment's own event types (docs/webhooks.md), for every endpoint subscribed to them."""

Notification = WebhookNotification | EntitlementBalanceThreshold | EntitlementResetNotice
"""Every notice: allotment's, and OpenMeter's (issue 17, OM-142), addressed to its rule's
channels."""


def remember(marks: NoticeMarks, notice: Notification) -> None:
    """Record in `marks` what `notice` fired, so it does not fire again (WHK-E2, WHK-E12)."""
    match notice:
        case UsageThresholdCrossed():
            key = threshold_key(notice.subscription_id, notice.feature_key, notice.period_start)
            if key not in marks.usage_thresholds:
                forget_past_periods(marks, notice.subscription_id, notice.period_start)
            marks.usage_thresholds.setdefault(key, []).append(notice.percent)
        case CreditBalanceLow():
            marks.pool_levels[notice.denomination] = BalanceLevel.LOW
        case CreditBalanceDepleted():
            marks.pool_levels[notice.denomination] = BalanceLevel.DEPLETED
        case CreditBalanceRecovered():
            marks.pool_levels[notice.denomination] = notice.level
        case EntitlementBalanceThreshold():
            remember_threshold(marks, notice)
        case _:
            pass  # the other types are once-only by their cause: one fact, one notice
