"""Documents the tests read back and docs/*-sample.png show (bench/document_samples.py)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pypdf

from allotment.documents import CreditNoteDocument, DocumentLine, InvoiceDocument, Party

SELLER = Party.seller("Allotment Cloud GmbH", "Hauptstraße 5\n10115 Berlin\nGermany")
CUSTOMER = Party(
    name="Zoë Łukasiewicz-Ørsted (Жанна & Σοφία)",
    email="zoe@example.com",
    address=("Åsgatan 3", "113 21 Stockholm", "Sweden"),
)


def priced(description: str, quantity: str, unit_price: str, amount: str) -> DocumentLine:
    """A line with a quantity and a unit price, from decimal strings."""
    return DocumentLine(
        description=description,
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
        amount=Decimal(amount),
    )


LINES = (
    priced("Plan base price: Pro", "1", "49.00", "49.00"),
    priced("Usage for api_calls: 152,000 calls", "152000", "0.0001", "15.20"),
    DocumentLine(description="Credit for unused Starter", amount=Decimal("-12.35")),
)
NOTE_LINES = (
    DocumentLine(description="Usage for api_calls: 152,000 calls", amount=Decimal("5.00")),
)


def invoice(
    *,
    lines: tuple[DocumentLine, ...] = LINES,
    currency: str = "USD",
    adjustments: Decimal = Decimal("5.00"),
    amount_paid: Decimal = Decimal(0),
    issue_date: date = date(2026, 12, 1),
    customer: Party = CUSTOMER,
) -> InvoiceDocument:
    """A DUE invoice for November 2026 whose totals follow from its lines."""
    subtotal = sum((line.amount for line in lines), Decimal(0))
    return InvoiceDocument(
        seller=SELLER,
        customer=customer,
        invoice_number="INV-000042",
        status="DUE",
        currency=currency,
        issue_date=issue_date,
        due_date=date(2026, 12, 15),
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 1),
        lines=lines,
        subtotal=subtotal,
        adjustments=adjustments,
        total=subtotal - adjustments,
        amount_paid=amount_paid,
        amount_due=subtotal - adjustments - amount_paid,
    )


def credit_note(
    *,
    lines: tuple[DocumentLine, ...] = NOTE_LINES,
    currency: str = "USD",
    memo: str | None = "Usage on 3 Nov was counted twice; ticket #812 <ops & billing>.",
) -> CreditNoteDocument:
    """A FINALIZED ADJUSTMENT note crediting INV-000042 for a billing error."""
    return CreditNoteDocument(
        seller=SELLER,
        customer=CUSTOMER,
        credit_note_number="CN-000007",
        invoice_number="INV-000042",
        invoice_date=date(2026, 12, 1),
        status="FINALIZED",
        note_type="ADJUSTMENT",
        reason="BILLING_ERROR",
        memo=memo,
        currency=currency,
        issue_date=date(2026, 12, 3),
        lines=lines,
        total=sum((line.amount for line in lines), Decimal(0)),
    )


def page_lines(pdf: bytes) -> list[list[str]]:
    """Each page's text as pypdf extracts it, one stripped line per text line."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [
        [line.strip() for line in page.extract_text().splitlines() if line.strip()]
        for page in reader.pages
    ]


def contains_run(lines: list[str], run: list[str]) -> bool:
    """`run` appears in `lines` as consecutive lines (a table row reads cell after cell)."""
    width = len(run)
    return any(lines[i : i + width] == run for i in range(len(lines) - width + 1))
