"""Notifications on the wire: the `NotificationRaised` facts of a journal record, rendered as
the events of docs/webhooks.md, "Event types" (WHK-E1..WHK-E40).

`data` is camelCase and JSON-ready: Decimals are strings, datetimes ISO 8601 strings, UUIDs
strings. Every payload carries the customer (`customerId`, and `referenceCustomerId`, the
reference id the app gave it, WHK-E39).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, assert_never

import msgspec

from allotment.domain.facts import Fact, NotificationRaised
from allotment.domain.notification_types import (
    CreditBalanceDepleted,
    CreditBalanceLow,
    CreditBalanceRecovered,
    CreditGrantExpired,
    InvoiceCreated,
    InvoicePaid,
    InvoicePastDue,
    InvoiceVoided,
    ReservationHoldExpired,
    SubscriptionActivated,
    SubscriptionCancellationScheduled,
    SubscriptionEnded,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionSuspended,
    UsageThresholdCrossed,
    WebhookNotification,
)
from allotment.domain.om_notify_notices import EntitlementBalanceThreshold, EntitlementResetNotice
from allotment.domain.state import AccessState, Invoice, Subscription
from allotment.http.mapping.invoices import invoice_dto
from allotment.webhooks.om_payloads import om_event
from allotment.webhooks.outbound import OutboundEvent

__all__ = ("EVENT_TYPES", "OutboundEvent", "event_type", "outbound_events")


_TYPES: dict[type[WebhookNotification], str] = {
    UsageThresholdCrossed: "entitlement.usage.threshold",
    CreditBalanceLow: "credits.balance.low",
    CreditBalanceDepleted: "credits.balance.depleted",
    CreditBalanceRecovered: "credits.balance.recovered",
    CreditGrantExpired: "credits.grant.expired",
    InvoiceCreated: "invoice.created",
    InvoicePaid: "invoice.paid",
    InvoicePastDue: "invoice.past_due",
    InvoiceVoided: "invoice.voided",
    SubscriptionActivated: "subscription.activated",
    SubscriptionSuspended: "subscription.suspended",
    SubscriptionRenewed: "subscription.renewed",
    SubscriptionPlanChanged: "subscription.plan_changed",
    SubscriptionCancellationScheduled: "subscription.cancellation_scheduled",
    SubscriptionEnded: "subscription.ended",
    ReservationHoldExpired: "reservation.expired",
}

EVENT_TYPES: frozenset[str] = frozenset((*_TYPES.values(), "webhook.test"))
"""Every event type an endpoint can subscribe to (issue 15 item 3), and the test event."""


def event_type(notice: WebhookNotification) -> str:
    """The wire name of `notice`'s event type."""
    return _TYPES[type(notice)]


def outbound_events(
    customer_id: uuid.UUID, external_id: str | None, facts: Sequence[Fact]
) -> list[OutboundEvent]:
    """The notifications among a journal record's `facts`, in order, rendered."""
    customer: dict[str, Any] = {"customerId": customer_id, "referenceCustomerId": external_id}
    events: list[OutboundEvent] = []
    for fact in facts:
        if not isinstance(fact, NotificationRaised):
            continue
        notice = fact.payload
        if isinstance(notice, EntitlementBalanceThreshold | EntitlementResetNotice):
            events.append(om_event(customer_id, external_id, fact.at, fact.notification_id, notice))
            continue
        events.append(
            OutboundEvent(
                id="msg_" + fact.notification_id.hex,
                type=event_type(notice),
                timestamp=fact.at,
                data=_json({**customer, **_data(notice)}),
            )
        )
    return events


def _json(data: dict[str, Any]) -> dict[str, Any]:
    """Decimals, datetimes and UUIDs as strings; no nulls: an absent field is left out, as
    the API leaves it out of its replies (API-6)."""
    rendered: dict[str, Any] = msgspec.to_builtins(data)
    return _without_nulls(rendered)


def _without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else value
        for key, value in data.items()
        if value is not None
    }


def _data(notice: WebhookNotification) -> dict[str, Any]:
    match notice:
        case UsageThresholdCrossed():
            return _usage(notice)
        case CreditBalanceLow() | CreditBalanceDepleted() | CreditBalanceRecovered():
            pool = {
                "poolId": notice.pool_id,
                "denomination": notice.denomination,
                "balance": notice.balance,
                "lowBalanceThreshold": notice.low_threshold,
            }
            if isinstance(notice, CreditBalanceRecovered):
                pool["level"] = notice.level.value
            return pool
        case CreditGrantExpired():
            return {
                "poolId": notice.pool_id,
                "denomination": notice.denomination,
                "grantId": notice.grant_id,
                "expiredAmount": notice.expired_amount,
                "balance": notice.balance,
            }
        case InvoiceCreated() | InvoicePaid() | InvoicePastDue() | InvoiceVoided():
            return {"invoice": _invoice(notice.invoice)}
        case (
            SubscriptionActivated()
            | SubscriptionSuspended()
            | SubscriptionRenewed()
            | SubscriptionPlanChanged()
            | SubscriptionCancellationScheduled()
            | SubscriptionEnded()
        ):
            return _subscription_data(notice)
        case ReservationHoldExpired():
            return _reservation(notice)
        case _:
            assert_never(notice)


def _reservation(notice: ReservationHoldExpired) -> dict[str, Any]:
    """WHK-E40: the reservation and the items its expiry freed, named as the reservation
    routes name them (docs/reservations.md)."""
    items = [
        _without_nulls(
            {
                "featureKey": item.feature_key,
                "units": str(item.units),
                "credits": str(item.credits) if item.credits is not None else None,
                "denomination": item.denomination,
            }
        )
        for item in notice.items
    ]  # built here, as `_json` leaves lists' nulls alone
    return {
        "reservationId": notice.reservation_id,
        "eventName": notice.event_name,
        "createdAt": notice.created_at,
        "expiredAt": notice.expired_at,
        "items": items,
    }


def _usage(notice: UsageThresholdCrossed) -> dict[str, Any]:
    """The feature, the threshold and the usage block of an entitlement check (WHK-E1)."""
    return {
        "subscriptionId": notice.subscription_id,
        "planKey": notice.plan_key,
        "featureKey": notice.feature_key,
        "threshold": {"percent": notice.percent, "units": notice.limit * notice.percent / 100},
        "usage": {
            "used": notice.used,
            "limit": notice.limit,
            "remaining": max(notice.limit - notice.used, Decimal(0)),
        },
        "periodStart": notice.period_start,
        "periodEnd": notice.period_end,
    }


def _invoice(invoice: Invoice) -> dict[str, Any]:
    """The invoice as the API shows it (INV-25), with its items and subscription id."""
    wire: dict[str, Any] = msgspec.to_builtins(invoice_dto(invoice, None, items=True))
    wire["subscriptionId"] = str(invoice.subscription_id)
    return wire


def _subscription_data(
    notice: SubscriptionActivated
    | SubscriptionSuspended
    | SubscriptionRenewed
    | SubscriptionPlanChanged
    | SubscriptionCancellationScheduled
    | SubscriptionEnded,
) -> dict[str, Any]:
    data: dict[str, Any] = {"subscription": _subscription(notice.subscription, notice.plan_key)}
    if isinstance(notice, SubscriptionRenewed):
        data["previousPeriodStart"] = notice.previous_period_start
    if isinstance(notice, SubscriptionPlanChanged):
        data["fromPlanId"] = notice.from_plan_id
        data["fromPlanKey"] = notice.from_plan_key
    return data


def _subscription(sub: Subscription, plan_key: str | None) -> dict[str, Any]:
    return {
        "id": sub.id,
        "planId": sub.plan_id,
        "planKey": plan_key,
        "status": sub.access.value,
        "isActive": sub.access is AccessState.ACTIVE,
        "currentPeriodStart": sub.current_period_start,
        "currentPeriodEnd": sub.current_period_end,
        "cancelMode": sub.cancel_mode.value if sub.cancel_mode is not None else None,
        "cancelEffectiveAt": sub.cancel_effective_at,
        "cancelledAt": sub.cancelled_at,
        "endedAt": sub.ended_at,
    }
