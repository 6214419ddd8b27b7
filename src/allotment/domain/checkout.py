"""Hosted checkout bookkeeping (STR-2..STR-6). The payment provider is called outside any
turn; these decisions only record what it answered."""

from __future__ import annotations

import uuid

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.facts import CheckoutClosed, CheckoutOpened, StripeCustomerLinked
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.state import PAYABLE, CustomerState, OpenCheckout

__all__ = ("close_checkout", "link_stripe_customer", "open_checkout")


def link_stripe_customer(
    state: CustomerState, stripe_customer_id: str, ctx: TurnContext
) -> Outcome:
    if state.stripe_customer_id == stripe_customer_id:
        return Outcome(Done())
    if state.stripe_customer_id is not None:
        return Outcome(
            Rejected(
                kind=RejectionKind.CONFLICT,
                message="Customer is already linked to Stripe customer "
                f"{state.stripe_customer_id}.",
            )
        )
    return Outcome(
        Done(), [StripeCustomerLinked(at=ctx.now, stripe_customer_id=stripe_customer_id)]
    )


def open_checkout(
    state: CustomerState, invoice_id: uuid.UUID, checkout: OpenCheckout, ctx: TurnContext
) -> Outcome:
    """Record a session; an open one already recorded wins (two concurrent requests with one
    idempotency key got the same session anyway)."""
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        return Outcome(Rejected(kind=RejectionKind.NOT_FOUND, message="Invoice not found."))
    if invoice.status not in PAYABLE or invoice_id in state.checkouts:
        return Outcome(Done())
    return Outcome(Done(), [CheckoutOpened(at=ctx.now, invoice_id=invoice_id, checkout=checkout)])


def close_checkout(
    state: CustomerState, invoice_id: uuid.UUID, session_id: str, ctx: TurnContext
) -> Outcome:
    """Forget an expired session, so the next checkout creates a fresh one (idempotent)."""
    current = state.checkouts.get(invoice_id)
    if current is None or current.session_id != session_id:
        return Outcome(Done())
    return Outcome(
        Done(), [CheckoutClosed(at=ctx.now, invoice_id=invoice_id, session_id=session_id)]
    )
