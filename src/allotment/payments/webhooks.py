"""Stripe webhooks: signature verification with the SDK, then a small, typed view of the
events allotment acts on."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import stripe

__all__ = (
    "ASYNC_FAILED",
    "ASYNC_SUCCEEDED",
    "COMPLETED",
    "EXPIRED",
    "HANDLED",
    "CheckoutEvent",
    "WebhookInvalid",
    "parse_webhook",
)

COMPLETED = "checkout.session.completed"
EXPIRED = "checkout.session.expired"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
HANDLED = frozenset({COMPLETED, EXPIRED, ASYNC_SUCCEEDED, ASYNC_FAILED})


class WebhookInvalid(ValueError):
    """The signature does not verify, or the payload is not a Stripe event: answer 400."""


class CheckoutEvent(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    livemode: bool
    event_id: str | None = None
    session_id: str | None = None
    invoice_id: uuid.UUID | None = None  # None when the metadata is missing or malformed
    invoice_reference: str | None = None  # the metadata as received, malformed or not
    payment_status: str | None = None
    amount_minor: int | None = None  # amount_total, in the currency's minor unit
    currency: str | None = None  # upper-case, as invoices spell it
    customer_reference: str | None = None  # metadata.allotment_customer_id: our customer id
    provider_customer_id: str | None = None  # the session's Stripe customer (cus_...)

    @property
    def paid(self) -> bool:
        """The event reports money taken: a paid completion, or a delayed payment that
        succeeded (Stripe sends it with payment_status "paid")."""
        return self.type == ASYNC_SUCCEEDED or (
            self.type == COMPLETED and self.payment_status == "paid"
        )


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
    event_id = str(data["id"]) if data.get("id") else None
    if kind not in HANDLED:
        return CheckoutEvent(type=kind, livemode=livemode, event_id=event_id)
    session = data.get("data", {}).get("object", {})
    metadata = session.get("metadata") or {}
    raw_invoice = metadata.get("invoice_id") or session.get("client_reference_id")
    amount = session.get("amount_total")
    currency = session.get("currency")
    return CheckoutEvent(
        type=kind,
        livemode=livemode,
        event_id=event_id,
        session_id=_text(session.get("id")),
        invoice_id=_uuid(raw_invoice),
        invoice_reference=_text(raw_invoice),
        payment_status=session.get("payment_status"),
        amount_minor=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        customer_reference=_text(metadata.get("allotment_customer_id")),
        provider_customer_id=_customer_id(session.get("customer")),
    )


def _customer_id(value: Any) -> str | None:
    """The session's customer: an id, or an object when the event expanded it."""
    return _text(value.get("id")) if isinstance(value, dict) else _text(value)


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
