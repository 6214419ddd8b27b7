"""An `InvoiceDocument` from today's invoice state (docs/credit-notes.md, CN-D6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from allotment.documents import Party, render_invoice
from allotment.documents.build import customer_party, invoice_document
from allotment.domain.state import (
    CustomerSource,
    CustomerState,
    Invoice,
    InvoiceItem,
    InvoiceStatus,
    InvoiceType,
    OpenMeterDetails,
    Profile,
)
from tests.documents.samples import SELLER, contains_run, page_lines

AT = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def _customer(**changes: object) -> CustomerState:
    customer = CustomerState(
        id=uuid.UUID(int=7),
        external_id="cust-7",
        source=CustomerSource.API,
        created_at=AT,
        modified_at=AT,
        profile=Profile(
            first_name="Jürgen",
            last_name="Ødegård",
            email="j@example.com",
            address="Hauptstraße 5\n10115 Berlin",
        ),
    )
    for name, value in changes.items():
        setattr(customer, name, value)
    return customer


def _invoice(status: InvoiceStatus) -> Invoice:
    items = (
        InvoiceItem(
            id=uuid.UUID(int=1),
            charge_amount=Decimal("49.00"),
            description="Plan base price: Pro",
            created_at=AT,
        ),
        InvoiceItem(
            id=uuid.UUID(int=2),
            charge_amount=Decimal("-12.35"),
            description="Credit for unused Starter",
            created_at=AT,
        ),
    )
    return Invoice(
        id=uuid.UUID(int=99),
        subscription_id=uuid.UUID(int=5),
        type=InvoiceType.RENEWAL,
        status=status,
        amount=Decimal("36.65"),
        currency="EUR",
        due_date=datetime(2026, 12, 14, tzinfo=UTC),
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        items=items,
        created_at=AT,
        modified_at=AT,
    )


def test_an_invoice_becomes_its_document_line_for_line() -> None:
    document = invoice_document(
        _customer(), _invoice(InvoiceStatus.DUE), seller=SELLER, invoice_number="INV-000001"
    )
    assert document.customer == Party(
        name="Jürgen Ødegård", email="j@example.com", address=("Hauptstraße 5", "10115 Berlin")
    )
    assert (document.invoice_number, document.status, document.currency) == (
        "INV-000001",
        "DUE",
        "EUR",
    )
    assert [(line.description, line.amount, line.quantity) for line in document.lines] == [
        ("Plan base price: Pro", Decimal("49.00"), None),
        ("Credit for unused Starter", Decimal("-12.35"), None),
    ]
    assert (document.issue_date.isoformat(), str(document.due_date), str(document.period_end)) == (
        "2026-11-30",
        "2026-12-14",
        "2026-12-01",
    )
    assert (document.subtotal, document.total, document.amount_paid, document.amount_due) == (
        Decimal("36.65"),
        Decimal("36.65"),
        Decimal(0),
        Decimal("36.65"),
    )
    [page] = page_lines(render_invoice(document))
    assert contains_run(page, ["Bill to", "Jürgen Ødegård", "Hauptstraße 5", "10115 Berlin"])
    assert contains_run(page, ["Amount due", "36.65 EUR"])


@pytest.mark.parametrize(
    ("status", "paid", "due"),
    [
        (InvoiceStatus.PAID, Decimal("31.65"), Decimal(0)),
        (InvoiceStatus.ADJUSTMENT_PAID, Decimal("31.65"), Decimal(0)),
        (InvoiceStatus.PAST_DUE, Decimal(0), Decimal("31.65")),
        (InvoiceStatus.VOID, Decimal(0), Decimal(0)),
        (InvoiceStatus.CANCELLED, Decimal(0), Decimal(0)),
    ],
)
def test_what_was_paid_and_is_due_follows_the_status(
    status: InvoiceStatus, paid: Decimal, due: Decimal
) -> None:
    document = invoice_document(
        _customer(),
        _invoice(status),
        seller=SELLER,
        invoice_number="INV-000002",
        adjustments=Decimal("5.00"),
    )
    assert (document.total, document.amount_paid, document.amount_due) == (
        Decimal("31.65"),
        paid,
        due,
    )


def test_the_customer_is_named_by_profile_then_openmeter_then_external_id_then_id() -> None:
    assert customer_party(_customer(profile=Profile())).name == "cust-7"
    openmeter = OpenMeterDetails(name="Ωmega Ltd", primary_email="billing@omega.example")
    named = customer_party(_customer(profile=Profile(), openmeter=openmeter))
    assert (named.name, named.email) == ("Ωmega Ltd", "billing@omega.example")
    assert customer_party(_customer(profile=Profile(), external_id=None)).name == str(
        uuid.UUID(int=7)
    )
