"""Provider payments (Stripe Checkout, delayed methods included), every one accounted for
(MNY-C2..MNY-C4): applied to its invoice exactly once, recorded as failed, or kept as unapplied
with the reason and the amount, never dropped. Pure decisions over one customer.

A payment is identified by its checkout session, so a repeated delivery, or a second event
about a payment already judged (`completed` then `async_payment_succeeded`), changes nothing
(INV-21).
"""

from __future__ import annotations

import uuid

from allotment.domain.context import Outcome, TurnContext
from allotment.domain.facts import CheckoutClosed, Fact, PaymentRecorded
from allotment.domain.money import to_minor_units
from allotment.domain.payment_records import PaymentRecord, PaymentStatus, ProviderPayment
from allotment.domain.replies import Done, Rejected
from allotment.domain.state import PAYABLE, SETTLED, CustomerState, Invoice
from allotment.domain.subscriptions import mark_invoice_paid

__all__ = ("APPLIED", "apply_payment", "record_failed_payment", "record_unapplied_payment")

APPLIED = "applied"  # the reply's message when a payment marked its invoice paid


def apply_payment(
    state: CustomerState, invoice_id: uuid.UUID, payment: ProviderPayment, ctx: TurnContext
) -> Outcome:
    """MNY-C2, MNY-C3: mark the invoice paid as mark-paid does (INV-20), or, when it cannot
    take this payment (already paid, voided, cancelled, another amount), keep the payment as
    unapplied with the reason. Replies Done with `APPLIED`, `unapplied: <reason>` or
    `already recorded: <status>`."""
    known = state.payments.get(payment.session_id)
    if known is not None:
        return Outcome(Done(message=f"already recorded: {known.status.value}"))
    invoice = state.invoices.get(invoice_id)
    if invoice is None:
        return record_unapplied_payment(state, payment, f"No invoice {invoice_id}.", ctx)
    refusal = _refusal(invoice, payment)
    if refusal is None:
        paid = mark_invoice_paid(state, invoice_id, ctx)
        if isinstance(paid.reply, Rejected):  # a payable invoice is always paid: defensive
            refusal = paid.reply.message
        else:
            record = _record(state, payment, PaymentStatus.APPLIED, ctx, invoice_id)
            return Outcome(
                Done(message=APPLIED), [PaymentRecorded(at=ctx.now, record=record), *paid.facts]
            )
    return _unapplied(state, payment, refusal, ctx, invoice_id)


def record_failed_payment(
    state: CustomerState, invoice_id: uuid.UUID, payment: ProviderPayment, ctx: TurnContext
) -> Outcome:
    """MNY-C4: a delayed payment failed. Nothing was taken, so the invoice stays as it is and
    runs into grace and suspension like any unpaid invoice (INV-12, SUB-3). Its session is
    complete and cannot be paid again: it is forgotten, so the next checkout opens a new one."""
    known = state.payments.get(payment.session_id)
    if known is not None:
        return Outcome(Done(message=f"already recorded: {known.status.value}"))
    reason = "The delayed payment failed; the invoice stays unpaid."
    record = _record(state, payment, PaymentStatus.FAILED, ctx, invoice_id, reason)
    facts: list[Fact] = [PaymentRecorded(at=ctx.now, record=record)]
    open_checkout = state.checkouts.get(invoice_id)
    if open_checkout is not None and open_checkout.session_id == payment.session_id:
        facts.append(
            CheckoutClosed(at=ctx.now, invoice_id=invoice_id, session_id=payment.session_id)
        )
    return Outcome(Done(message="failed: the invoice stays unpaid"), facts)


def record_unapplied_payment(
    state: CustomerState, payment: ProviderPayment, reason: str, ctx: TurnContext
) -> Outcome:
    """MNY-C3: money taken for no invoice of this customer, kept with the reason."""
    known = state.payments.get(payment.session_id)
    if known is not None:
        return Outcome(Done(message=f"already recorded: {known.status.value}"))
    return _unapplied(state, payment, reason, ctx, None)


def _unapplied(
    state: CustomerState,
    payment: ProviderPayment,
    reason: str,
    ctx: TurnContext,
    invoice_id: uuid.UUID | None,
) -> Outcome:
    record = _record(state, payment, PaymentStatus.UNAPPLIED, ctx, invoice_id, reason)
    return Outcome(
        Done(message=f"unapplied: {reason}"), [PaymentRecorded(at=ctx.now, record=record)]
    )


def _refusal(invoice: Invoice, payment: ProviderPayment) -> str | None:
    """Why `invoice` cannot take `payment`, or None when it can."""
    if invoice.status in SETTLED:
        return f"Invoice {invoice.id} is already paid."
    if invoice.status not in PAYABLE:
        return f"Invoice {invoice.id} is {invoice.status.value}; nothing is due on it."
    if payment.currency is not None and payment.currency != invoice.currency:
        return f"Paid in {payment.currency}; invoice {invoice.id} is in {invoice.currency}."
    due = to_minor_units(invoice.amount, invoice.currency)
    if payment.amount_minor is not None and payment.amount_minor != due:
        # A partial or excess payment is not a payment of this invoice: keep it whole.
        return f"Paid {payment.amount_minor} minor units; invoice {invoice.id} is due {due}."
    return None


def _record(
    state: CustomerState,
    payment: ProviderPayment,
    status: PaymentStatus,
    ctx: TurnContext,
    invoice_id: uuid.UUID | None,
    reason: str | None = None,
) -> PaymentRecord:
    return PaymentRecord(
        payment=payment,
        status=status,
        recorded_at=ctx.now,
        customer_id=state.id,
        invoice_id=invoice_id,
        reason=reason,
    )
