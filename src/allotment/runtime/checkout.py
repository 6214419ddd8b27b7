"""Hosted checkout: read the invoice in a turn, call the provider outside any turn, record
what it answered in another turn. A customer's turns never wait on the network (STR-*).

Provider idempotency keys derive from our ids, so a retried request never creates a second
customer or session: `allotment-customer-<customer id>` and
`allotment-checkout-<invoice id>-<n>`, where n counts the sessions of that invoice that expired.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.commands import (
    ApplyProviderPayment,
    CloseCheckoutSession,
    LinkStripeCustomer,
    OpenCheckoutSession,
    RecordFailedPayment,
    RecordUnappliedPayment,
)
from allotment.domain.money import to_minor_units
from allotment.domain.payment_records import PaymentRecord, PaymentStatus, ProviderPayment
from allotment.domain.payments import APPLIED
from allotment.domain.replies import Done, Rejected, RejectionKind, Reply
from allotment.domain.state import PAYABLE, SETTLED, CustomerState, InvoiceStatus, OpenCheckout
from allotment.domain.subscriptions import NOT_PAYABLE
from allotment.payments.ports import CheckoutLine, CheckoutRequest, PaymentGateway
from allotment.runtime.clock import Clock
from allotment.runtime.ports import CustomerLookup, Shard

__all__ = ("CheckoutRefused", "CheckoutService", "InvoiceView")

logger = logging.getLogger("allotment.checkout")


class CheckoutRefused(Exception):
    """The request cannot get a checkout URL: `status` is 400 (not payable) or 404."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class InvoiceView(msgspec.Struct, frozen=True, kw_only=True):
    invoice_id: uuid.UUID
    customer_id: uuid.UUID
    email: str | None
    name: str | None
    stripe_customer_id: str | None
    status: InvoiceStatus
    amount_minor: int
    currency: str
    lines: tuple[CheckoutLine, ...]
    open_checkout: OpenCheckout | None
    generation: int


def _view(invoice_id: uuid.UUID) -> Callable[[CustomerState, Catalog, datetime], InvoiceView]:
    def project(state: CustomerState, catalog: Catalog, now: datetime) -> InvoiceView:
        del catalog, now
        invoice = state.invoices[invoice_id]
        amounts = [
            (item.description, to_minor_units(item.charge_amount, invoice.currency))
            for item in invoice.items
        ]
        total = to_minor_units(invoice.amount, invoice.currency)
        if all(minor > 0 for _, minor in amounts) and sum(m for _, m in amounts) == total:
            lines = tuple(CheckoutLine(description=d, amount_minor=m) for d, m in amounts)
        else:  # a credit line cannot be a Stripe line item: charge the net in one line
            lines = (CheckoutLine(description=f"Invoice {invoice.id}", amount_minor=total),)
        p = state.profile
        name = " ".join(x for x in (p.first_name, p.last_name) if x) or None
        return InvoiceView(
            invoice_id=invoice.id, customer_id=state.id, email=p.email, name=name,
            stripe_customer_id=state.stripe_customer_id, status=invoice.status,
            amount_minor=total, currency=invoice.currency, lines=lines,
            open_checkout=state.checkouts.get(invoice.id),
            generation=state.checkout_generation.get(invoice.id, 0),
        )  # fmt: skip

    return project


class CheckoutService:
    def __init__(self, gateway: PaymentGateway | None, clock: Clock) -> None:
        self.gateway = gateway
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.gateway is not None

    async def checkout_url(self, shard: Shard, invoice_id: uuid.UUID) -> str:
        """STR-2..STR-5. Raises CheckoutRefused, or PaymentProviderError when the provider fails
        (nothing is recorded then)."""
        assert self.gateway is not None, "checkout with Stripe disabled (STR-1 comes first)"
        view = await shard.read_on_owner(invoice_id, _view(invoice_id))
        if view is None:
            raise CheckoutRefused(404, "Invoice not found.")
        if view.status in SETTLED:
            return ""  # STR-3
        if view.status not in PAYABLE or view.amount_minor <= 0:
            raise CheckoutRefused(400, NOT_PAYABLE)  # STR-4
        open_checkout = view.open_checkout
        if open_checkout is not None and (
            open_checkout.expires_at is None or open_checkout.expires_at > self._clock.now()
        ):
            return open_checkout.url  # STR-5: reuse the open session
        provider_customer = view.stripe_customer_id
        if provider_customer is None:  # the same key returns the same customer on a retry
            provider_customer = await self.gateway.create_customer(
                str(view.customer_id),
                view.email,
                view.name,
                f"allotment-customer-{view.customer_id}",
            )
        session = await self.gateway.create_checkout_session(
            CheckoutRequest(
                invoice_id=str(invoice_id),
                customer_reference=str(view.customer_id),
                provider_customer_id=provider_customer,
                currency=view.currency,
                lines=view.lines,
                idempotency_key=f"allotment-checkout-{invoice_id}-{view.generation}",
            )
        )
        # Only now, with both provider calls done, is anything recorded: a provider failure
        # above changes no state.
        if view.stripe_customer_id is None:
            link = LinkStripeCustomer(stripe_customer_id=provider_customer)
            reply = await shard.command_on_owner(invoice_id, link, "Invoice not found.")
            if isinstance(reply, Rejected):
                raise CheckoutRefused(409 if reply.kind == "conflict" else 404, reply.message)
        checkout = OpenCheckout(
            session_id=session.id, url=session.url, expires_at=session.expires_at
        )
        opened = OpenCheckoutSession(invoice_id=invoice_id, checkout=checkout)
        await shard.command_on_owner(invoice_id, opened, "Invoice not found.")
        return session.url

    async def payment_taken(
        self,
        shard: Shard,
        payment: ProviderPayment,
        invoice_id: uuid.UUID | None,
        customers: list[CustomerLookup],
    ) -> str:
        """STR-6, MNY-C2, MNY-C3: the provider took `payment` for `invoice_id`. Apply it to
        that invoice exactly once (INV-20, INV-21), or keep it as unapplied: in the customer's
        state when the invoice or one of `customers` names a customer of this environment,
        at the environment's level otherwise. Returns the outcome for the webhook's answer."""
        if invoice_id is not None:
            command = ApplyProviderPayment(invoice_id=invoice_id, payment=payment)
            reply = await shard.command_on_owner(invoice_id, command, "Invoice not found.")
            if not _not_found(reply):
                return self._logged(payment, reply)
            reason = f"No invoice {invoice_id} in this environment."
        elif payment.invoice_reference is None:
            reason = "The session names no invoice (no invoice_id metadata)."
        else:
            reason = f"The session's invoice_id is malformed: {payment.invoice_reference!r}."
        for lookup in customers:
            unapplied = RecordUnappliedPayment(payment=payment, reason=reason)
            reply = await shard.command(lookup, unapplied)
            if not _not_found(reply):
                return self._logged(payment, reply)
        record = PaymentRecord(
            payment=payment, status=PaymentStatus.UNAPPLIED, recorded_at=self._clock.now(),
            reason=reason,
        )  # fmt: skip
        kept = await shard.record_unapplied_payment(record)
        message = f"unapplied: {kept.reason}" if kept is record else "already recorded: UNAPPLIED"
        return self._logged(payment, Done(message=message))

    async def payment_failed(
        self, shard: Shard, payment: ProviderPayment, invoice_id: uuid.UUID | None
    ) -> str:
        """MNY-C4: a delayed payment failed; nothing was taken. Recorded for the invoice's
        customer, whose invoice stays unpaid; a failure naming no invoice is only logged."""
        if invoice_id is not None:
            command = RecordFailedPayment(invoice_id=invoice_id, payment=payment)
            reply = await shard.command_on_owner(invoice_id, command, "Invoice not found.")
            if not _not_found(reply):
                logger.info("payment %s for invoice %s failed", payment.session_id, invoice_id)
                return _message(reply)
        logger.info(
            "payment %s failed for no invoice of this environment (%r): nothing to record",
            payment.session_id, payment.invoice_reference,
        )  # fmt: skip
        return "ignored: no invoice of this environment"

    @staticmethod
    def _logged(payment: ProviderPayment, reply: Reply) -> str:
        message = _message(reply)
        if message != APPLIED and not message.startswith("already recorded"):
            # Money taken that no invoice received: refund it or apply it by hand.
            logger.warning(
                "payment %s (%s %s) not applied: %s",
                payment.session_id, payment.amount_minor, payment.currency, message,
            )  # fmt: skip
        return message

    async def session_expired(self, shard: Shard, invoice_id: uuid.UUID, session_id: str) -> str:
        await shard.command_on_owner(
            invoice_id,
            CloseCheckoutSession(invoice_id=invoice_id, session_id=session_id),
            "Invoice not found.",
        )
        return "forgotten"


def _not_found(reply: Reply) -> bool:
    return isinstance(reply, Rejected) and reply.kind is RejectionKind.NOT_FOUND


def _message(reply: Reply) -> str:
    if isinstance(reply, Rejected):
        return f"not applied: {reply.message}"
    return (reply.message if isinstance(reply, Done) else None) or "done"
