"""An `InvoiceDocument` from the domain's invoice state as it is today (CN-D6).

Today's invoices carry no number, no credit-note totals and no payment amounts of their own:
the caller passes the number (item 5 of issue 18 assigns one at finalization; until then the
invoice id), the adjustment and refund totals (the sums of the invoice's FINALIZED credit notes
by type, zero before credit notes exist), and what was paid follows from the status, as Tanso's
mark-paid is all-or-nothing (INV-20).
"""

from __future__ import annotations

from decimal import Decimal

from allotment.documents.model import DocumentLine, InvoiceDocument, Party
from allotment.domain.money import ZERO
from allotment.domain.state import SETTLED, CustomerState, Invoice, InvoiceStatus

__all__ = ("customer_party", "invoice_document")

_OWES_NOTHING = frozenset(
    (InvoiceStatus.VOID, InvoiceStatus.CANCELLED, InvoiceStatus.CANCELLED_PROCESSED)
)


def invoice_document(
    customer: CustomerState,
    invoice: Invoice,
    *,
    seller: Party,
    invoice_number: str,
    adjustments: Decimal = ZERO,
    refunded: Decimal = ZERO,
) -> InvoiceDocument:
    """The document of `invoice`, one line per invoice item in the invoice's order.

    A settled invoice (PAID, ADJUSTMENT_PAID) has been paid its total less the adjustments; a
    VOID or CANCELLED one owes nothing; any other owes its total.
    """
    total = invoice.amount - adjustments
    owes_nothing = invoice.status in _OWES_NOTHING
    paid = total if invoice.status in SETTLED else ZERO
    return InvoiceDocument(
        seller=seller,
        customer=customer_party(customer),
        invoice_number=invoice_number,
        status=invoice.status.value,
        currency=invoice.currency,
        issue_date=invoice.created_at.date(),
        due_date=invoice.due_date.date(),
        period_start=invoice.period_start.date(),
        period_end=invoice.period_end.date(),
        lines=tuple(
            DocumentLine(description=item.description, amount=item.charge_amount)
            for item in invoice.items
        ),
        subtotal=invoice.amount,
        adjustments=adjustments,
        total=total,
        amount_paid=paid,
        amount_due=ZERO if owes_nothing else total - paid,
        refunded=refunded,
        owes_nothing=owes_nothing,
    )


def customer_party(customer: CustomerState) -> Party:
    """Who the document is addressed to: the profile's name, else the OpenMeter name, else
    the external id, else the id; the profile's email (or OpenMeter's) and address."""
    profile = customer.profile
    openmeter = customer.openmeter
    full = " ".join(p for p in (profile.first_name, profile.last_name) if p)
    name = full or (openmeter.name if openmeter else "") or customer.external_id
    email = profile.email or (openmeter.primary_email if openmeter else None)
    address = tuple(line.strip() for line in (profile.address or "").splitlines() if line.strip())
    return Party(name=name or str(customer.id), email=email, address=address)
