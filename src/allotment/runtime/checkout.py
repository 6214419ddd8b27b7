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
    CloseCheckoutSession,
    LinkStripeCustomer,
    MarkInvoicePaid,
    OpenCheckoutSession,
)
from allotment.domain.money import to_minor_units
from allotment.domain.replies import Rejected
from allotment.domain.state import PAYABLE, SETTLED, CustomerState, InvoiceStatus, OpenCheckout
from allotment.domain.subscriptions import NOT_PAYABLE
from allotment.payments.ports import CheckoutLine, CheckoutRequest, PaymentGateway
from allotment.runtime.clock import Clock
from allotment.runtime.ports import Shard

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

    async def session_completed(self, shard: Shard, invoice_id: uuid.UUID, paid: bool) -> str:
        """STR-6: apply mark-paid exactly once; repeats are no-ops (INV-21)."""
        if not paid:
            return "ignored: payment not settled yet"
        reply = await shard.command_on_owner(
            invoice_id, MarkInvoicePaid(invoice_id=invoice_id), "Invoice not found."
        )
        if isinstance(reply, Rejected):
            # Stripe took money for an invoice we no longer collect (e.g. voided): say so loudly.
            logger.warning("payment for invoice %s not applied: %s", invoice_id, reply.message)
            return f"not applied: {reply.message}"
        return "applied"

    async def session_expired(self, shard: Shard, invoice_id: uuid.UUID, session_id: str) -> str:
        await shard.command_on_owner(
            invoice_id,
            CloseCheckoutSession(invoice_id=invoice_id, session_id=session_id),
            "Invoice not found.",
        )
        return "forgotten"
