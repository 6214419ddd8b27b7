"""What allotment keeps of each payment a provider reported (Stripe Checkout): applied to its
invoice, failed, or unapplied with the reason (MNY-C2..MNY-C4). Values only; the decisions are
in `payments.py`.

A payment is identified by its checkout session: a session pays at most once, whatever the
number of events (`completed`, `async_payment_succeeded`) or deliveries that report it.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

__all__ = ("PaymentRecord", "PaymentStatus", "ProviderPayment")


class PaymentStatus(enum.StrEnum):
    APPLIED = "APPLIED"  # marked its invoice paid (INV-20)
    FAILED = "FAILED"  # a delayed method failed: nothing was taken, the invoice stays unpaid
    UNAPPLIED = "UNAPPLIED"  # money taken that no invoice received: to be refunded or applied


class ProviderPayment(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A payment as the provider reported it, before allotment judged it."""

    session_id: str  # the checkout session (cs_...): the payment's identity
    event_type: str  # the webhook that reported it
    event_id: str | None = None
    amount_minor: int | None = None  # what the provider took, in the currency's minor unit
    currency: str | None = None  # upper-case ISO 4217, as the invoices spell it
    invoice_reference: str | None = None  # the invoice the payment names, as received
    provider_customer_id: str | None = None  # cus_...


class PaymentRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A payment and what allotment did with it. `customer_id` is None for an unapplied payment
    that names no customer of the environment (kept at the environment's level)."""

    payment: ProviderPayment
    status: PaymentStatus
    recorded_at: datetime
    customer_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None  # the invoice it paid, or failed or tried to pay
    reason: str | None = None  # why it is unapplied or failed
