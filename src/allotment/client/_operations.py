"""The Tanso Client API's operations as `Call` values (tanso-openapi.json), shared by the
sync and async clients. Each function's name and arguments are the client method's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from allotment.client._wire import Call, body_of, decode_data, ignore_data, segment
from allotment.client.models import (
    CheckoutSession,
    CreditPool,
    Customer,
    Entitlement,
    EventBatchItem,
    EventResult,
    Invoice,
    Model,
    OptionalEnvelope,
    PlanWithFeatures,
    Request,
    SubscribedCustomer,
    UsageEvent,
)

__all__ = (
    "CancelMode",
    "ChangeType",
    "cancel_scheduled_plan_change",
    "cancel_subscription",
    "change_plan",
    "check_entitlement",
    "create_checkout_session",
    "create_customer",
    "create_subscription",
    "evaluate_entitlement",
    "get_customer",
    "ingest_event",
    "ingest_events",
    "list_credit_pools",
    "list_invoices",
    "list_plans",
    "mark_invoice_paid",
    "revert_cancellation",
    "simulate_usage",
)

CancelMode = Literal["IMMEDIATE", "END_OF_PERIOD"]
ChangeType = Literal["UPGRADE", "DOWNGRADE"]


def create_customer(
    *,
    customer_reference_id: str,
    first_name: str,
    last_name: str,
    email: str,
    phone_number: str | None = None,
    address: str | None = None,
) -> Call[None]:
    body = body_of({"externalClientCustomerId": customer_reference_id, "firstName": first_name,
                    "lastName": last_name, "email": email, "phoneNumber": phone_number,
                    "address": address})  # fmt: skip
    return Call("POST", "/customers", ignore_data, body)


def get_customer(customer_reference_id: str) -> Call[Customer]:
    return Call("GET", f"/customers/{segment(customer_reference_id)}", decode_data(Customer))


def create_subscription(
    customer_reference_id: str, plan_id: uuid.UUID | str, *, grace_period_days: int | None = None
) -> Call[SubscribedCustomer]:
    body = body_of({"customerReferenceId": customer_reference_id, "planId": str(plan_id),
                    "gracePeriod": grace_period_days})  # fmt: skip
    return Call("POST", "/subscriptions", decode_data(SubscribedCustomer), body)


def cancel_subscription(
    subscription_id: uuid.UUID | str, *, mode: CancelMode | None = None
) -> Call[None]:
    params = {"cancelMode": mode} if mode is not None else {}
    path = f"/subscriptions/cancellation/{segment(subscription_id)}"
    return Call("POST", path, ignore_data, params=params)


def revert_cancellation(subscription_id: uuid.UUID | str) -> Call[None]:
    path = f"/subscriptions/cancellation/{segment(subscription_id)}/scheduled"
    return Call("DELETE", path, ignore_data)


def change_plan(
    subscription_id: uuid.UUID | str, to_plan_id: uuid.UUID | str, change_type: ChangeType
) -> Call[None]:
    body = body_of({"changeToPlanId": str(to_plan_id), "changeType": change_type})
    return Call("POST", f"/subscriptions/{segment(subscription_id)}/plan-change", ignore_data, body)


def cancel_scheduled_plan_change(subscription_id: uuid.UUID | str) -> Call[None]:
    path = f"/subscriptions/{segment(subscription_id)}/plan-change/scheduled"
    return Call("DELETE", path, ignore_data)


def list_plans() -> Call[list[PlanWithFeatures]]:
    return Call("GET", "/plans", decode_data(list[PlanWithFeatures]))


def check_entitlement(customer_reference_id: str, feature_key: str) -> Call[Entitlement]:
    path = f"/entitlements/{segment(customer_reference_id)}/{segment(feature_key)}"
    return Call("GET", path, decode_data(Entitlement))


def _context(idempotency_key: str | None, flow_id: str | None) -> dict[str, str] | None:
    context = {"idempotencyKey": idempotency_key, "flowId": flow_id}
    return {name: value for name, value in context.items() if value is not None} or None


def evaluate_entitlement(
    customer_reference_id: str,
    feature_key: str,
    *,
    flow_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Entitlement]:
    body = body_of({"customerReferenceId": customer_reference_id, "featureKey": feature_key,
                    "context": _context(idempotency_key, flow_id)})  # fmt: skip
    return Call("POST", "/entitlements", decode_data(Entitlement), body)


def simulate_usage(
    customer_reference_id: str,
    feature_key: str,
    units: Decimal | int,
    *,
    event_name: str | None = None,
    meta: dict[str, Any] | None = None,
    flow_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Entitlement]:
    track = {"usageUnits": units, "eventName": event_name, "meta": meta}
    body = body_of({"customerReferenceId": customer_reference_id, "featureKey": feature_key,
                    "track": {name: value for name, value in track.items() if value is not None},
                    "context": _context(idempotency_key, flow_id)})  # fmt: skip
    return Call("POST", "/entitlements", decode_data(Entitlement), body)


def ingest_event(event: UsageEvent, *, idempotency_key: str | None = None) -> Call[EventResult]:
    headers = {"X-Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return Call("POST", "/events", _read_event_result, body_of(event), headers=headers)


_EVENT_ANSWER = msgspec.json.Decoder(OptionalEnvelope[EventResult])


def _read_event_result(status: int, body: bytes) -> EventResult:
    """A plain 201 carries no data: nothing to report is an empty result, not an error."""
    del status
    return _EVENT_ANSWER.decode(body).data or EventResult()


class _EventBatch(Request, kw_only=True):
    events: list[UsageEvent]


class _EventBatchResults(Model, kw_only=True, frozen=True):
    results: list[EventBatchItem]


def ingest_events(events: Sequence[UsageEvent]) -> Call[list[EventBatchItem]]:
    read_results = decode_data(_EventBatchResults)

    def read(status: int, body: bytes) -> list[EventBatchItem]:
        return read_results(status, body).results

    return Call("POST", "/events/batch", read, body_of(_EventBatch(events=list(events))))


def list_invoices(customer_reference_id: str) -> Call[list[Invoice]]:
    path = f"/billing/invoices/{segment(customer_reference_id)}"
    return Call("GET", path, decode_data(list[Invoice]))


def mark_invoice_paid(invoice_id: uuid.UUID | str) -> Call[None]:
    return Call("POST", f"/billing/invoices/{segment(invoice_id)}/mark-paid", ignore_data)


def create_checkout_session(invoice_id: uuid.UUID | str) -> Call[CheckoutSession]:
    path = f"/billing/invoices/{segment(invoice_id)}/stripe/checkout"
    return Call("POST", path, decode_data(CheckoutSession))


def list_credit_pools(
    customer_reference_id: str, *, grants: bool = False, transactions: bool = False
) -> Call[list[CreditPool]]:
    expand = ",".join(name for name, wanted in (("grants", grants), ("transactions", transactions))
                      if wanted)  # fmt: skip
    params = {"expand": expand} if expand else {}
    path = f"/credits/{segment(customer_reference_id)}/pools"
    return Call("GET", path, decode_data(list[CreditPool]), params=params)
