"""Stripe webhooks: signature verification with the SDK, then a small, typed view of the
events allotment acts on."""

from __future__ import annotations

import uuid

import msgspec
import stripe

__all__ = ("CheckoutEvent", "WebhookInvalid", "parse_webhook")

HANDLED = frozenset({"checkout.session.completed", "checkout.session.expired"})


class WebhookInvalid(ValueError):
    """The signature does not verify, or the payload is not a Stripe event: answer 400."""


class CheckoutEvent(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    livemode: bool
    session_id: str | None = None
    invoice_id: uuid.UUID | None = None
    payment_status: str | None = None


def parse_webhook(payload: bytes, signature: str | None, secret: str) -> CheckoutEvent:
    """Verify `payload` against the `Stripe-Signature` header and extract what matters.

    Raises:
        WebhookInvalid: bad or missing signature, stale timestamp, or malformed payload.
    """
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookInvalid(str(error) or "invalid signature") from None
    data = event.to_dict()  # plain dicts from here on; StripeObject is not a mapping
    kind = str(data.get("type", ""))
    livemode = bool(data.get("livemode", False))
    if kind not in HANDLED:
        return CheckoutEvent(type=kind, livemode=livemode)
    session = data.get("data", {}).get("object", {})
    raw_invoice = (session.get("metadata") or {}).get("invoice_id") or session.get(
        "client_reference_id"
    )
    try:
        invoice_id = uuid.UUID(str(raw_invoice)) if raw_invoice else None
    except ValueError:
        invoice_id = None
    return CheckoutEvent(
        type=kind,
        livemode=livemode,
        session_id=str(session.get("id")) if session.get("id") else None,
        invoice_id=invoice_id,
        payment_status=session.get("payment_status"),
    )
