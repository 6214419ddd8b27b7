"""Invoices on the wire, and listCustomerInvoices (INV-25..INV-28)."""

from __future__ import annotations

from datetime import datetime

from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState, Invoice
from allotment.http.mapping.subscriptions import subscription_dto
from allotment.http.schemas import InvoiceDto, InvoiceItemDto, SubscriptionDto

__all__ = ("invoice_dto", "project_invoices")


def invoice_dto(
    invoice: Invoice, subscription: SubscriptionDto | None, *, items: bool = False
) -> InvoiceDto:
    return InvoiceDto(
        id=invoice.id,
        amount=invoice.amount,
        currency=invoice.currency,
        status=invoice.status.value,
        dueDate=invoice.due_date,
        subscription=subscription,
        createdAt=invoice.created_at,
        modifiedAt=invoice.modified_at,
        metadata={
            "invoiceType": invoice.type.value,
            "periodStart": invoice.period_start,
            "periodEnd": invoice.period_end,
        },
        items=[
            InvoiceItemDto(
                id=item.id,
                invoiceId=invoice.id,
                chargeAmount=item.charge_amount,
                description=item.description,
                createdAt=item.created_at,
                modifiedAt=item.created_at,
            )
            for item in invoice.items
        ]
        if items
        else None,
    )


def project_invoices(state: CustomerState, catalog: Catalog, now: datetime) -> list[InvoiceDto]:
    """listCustomerInvoices (INV-25..INV-28): oldest first, ties by id, without items."""
    del now
    subs = {sid: subscription_dto(s, catalog) for sid, s in state.subscriptions.items()}
    ordered = sorted(state.invoices.values(), key=lambda i: (i.created_at, str(i.id)))
    return [invoice_dto(i, subs.get(i.subscription_id)) for i in ordered]
