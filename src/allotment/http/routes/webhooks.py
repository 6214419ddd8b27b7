"""POST /api/v1/webhooks/stripe: verify, then apply through the customer's actor (STR-6).

Public (Stripe has no API key): the signature is the authentication. The change is durable
before the 200, so a delivery Stripe sees acknowledged is never lost; repeats are no-ops.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, post

from allotment.http.context import AnyRequest, checkout_of, errors, settings_of, system_of
from allotment.http.errors import ApiError, json_response
from allotment.payments.webhooks import WebhookInvalid, parse_webhook

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
    outcome = "ignored"
    if event.invoice_id is not None and event.session_id is not None:
        shard = system_of(request).route("live" if event.livemode else "test")
        if event.type == "checkout.session.completed":
            outcome = await checkout.session_completed(
                shard, event.invoice_id, event.payment_status == "paid"
            )
        elif event.type == "checkout.session.expired":
            outcome = await checkout.session_expired(shard, event.invoice_id, event.session_id)
    return json_response({"success": True, "data": {"type": event.type, "outcome": outcome}})
