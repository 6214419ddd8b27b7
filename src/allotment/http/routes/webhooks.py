"""POST /api/v1/webhooks/stripe: verify, then apply through the customer's actor (STR-6).

Public (Stripe has no API key): the signature is the authentication. The change is durable
before the 200, so a delivery Stripe sees acknowledged is never lost; repeats are no-ops. A
payment that cannot be applied is kept as unapplied and still answered 200: Stripe retrying
would not make it applicable (MNY-C3).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import Response, post

from allotment.domain.payment_records import ProviderPayment
from allotment.http.context import AnyRequest, checkout_of, errors, settings_of, system_of
from allotment.http.errors import ApiError, json_response
from allotment.payments.refunds import REFUND_EVENTS, refund_reports
from allotment.payments.webhooks import (
    ASYNC_FAILED,
    COMPLETED,
    EXPIRED,
    CheckoutEvent,
    WebhookInvalid,
    parse_webhook,
)
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = ("stripe_webhook",)


@post(
    "/api/v1/webhooks/stripe", operation_id="stripeWebhook", status_code=200,
    opt={"public": True}, responses=errors(400), tags=["Webhooks"],
)  # fmt: skip
async def stripe_webhook(request: AnyRequest) -> Response[dict[str, Any]]:
    secret = settings_of(request).stripe_webhook_secret
    checkout = checkout_of(request)
    if not checkout.enabled or not secret:
        raise ApiError(400, "Stripe is not enabled at the account.")
    try:
        event = parse_webhook(await request.body(), request.headers.get("stripe-signature"), secret)
    except WebhookInvalid as invalid:
        raise ApiError(400, f"Invalid Stripe signature: {invalid}") from None
    shard = system_of(request).route("live" if event.livemode else "test")
    if event.type in REFUND_EVENTS:  # CN-47: a credit note's refund settled or failed
        for report in refund_reports(await request.body()):
            await shard.credit_note(report)  # refused (no such note): nothing to record
        return json_response({"success": True, "data": {"type": event.type, "outcome": "refund"}})
    outcome = await _apply(checkout, shard, event)
    return json_response({"success": True, "data": {"type": event.type, "outcome": outcome}})


async def _apply(checkout: CheckoutService, shard: Shard, event: CheckoutEvent) -> str:
    """The event's effect (docs/stripe.md): every payment is applied or kept (MNY-C2..C4)."""
    if event.session_id is None:
        return "ignored"
    if event.paid:
        return await checkout.payment_taken(
            shard, _payment(event, event.session_id), event.invoice_id, _customers(event)
        )
    if event.type == ASYNC_FAILED:
        return await checkout.payment_failed(
            shard, _payment(event, event.session_id), event.invoice_id
        )
    if event.type == EXPIRED and event.invoice_id is not None:
        return await checkout.session_expired(shard, event.invoice_id, event.session_id)
    if event.type == COMPLETED:
        return "ignored: payment not settled yet"  # a delayed method: async_payment_* follows
    return "ignored"


def _payment(event: CheckoutEvent, session_id: str) -> ProviderPayment:
    return ProviderPayment(
        session_id=session_id, event_type=event.type, event_id=event.event_id,
        amount_minor=event.amount_minor, currency=event.currency,
        invoice_reference=event.invoice_reference,
        provider_customer_id=event.provider_customer_id,
    )  # fmt: skip


def _customers(event: CheckoutEvent) -> list[CustomerLookup]:
    """Who the payment may belong to when its invoice is unknown: our customer id from the
    session's metadata, then its Stripe customer."""
    lookups = []
    if event.customer_reference is not None:
        with contextlib.suppress(ValueError):  # malformed: the Stripe customer may name one
            lookups.append(CustomerLookup(customer_id=uuid.UUID(event.customer_reference)))
    if event.provider_customer_id is not None:
        lookups.append(CustomerLookup(stripe_customer_id=event.provider_customer_id))
    return lookups
