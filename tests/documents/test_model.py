"""The view models refuse totals that do not follow from their lines (CN-D1)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from allotment.documents import CreditNoteDocument, InvoiceDocument, Party
from tests.documents.samples import NOTE_LINES, SELLER, credit_note, invoice


def test_the_samples_are_consistent() -> None:
    assert invoice().amount_due == Decimal("46.85")
    assert credit_note().total == Decimal("5.00")


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("subtotal", Decimal("51.86"), "the lines sum to 51\\.85"),
        ("total", Decimal("51.85"), "total 51.85"),
        ("amount_due", Decimal("46.84"), "amount_due 46.84"),
    ],
)
def test_an_invoice_whose_totals_do_not_add_up_is_refused(
    field: str, value: Decimal, complaint: str
) -> None:
    fields = msgspec.structs.asdict(invoice()) | {field: value}
    with pytest.raises(ValueError, match=complaint):
        InvoiceDocument(**fields)


def test_a_void_invoice_owes_nothing() -> None:
    fields = msgspec.structs.asdict(invoice()) | {"status": "VOID", "owes_nothing": True}
    with pytest.raises(ValueError, match=re.escape("amount_due 46.85 != 0")):
        InvoiceDocument(**fields)
    assert InvoiceDocument(**fields | {"amount_due": Decimal(0)}).amount_due == 0


def test_a_note_whose_total_is_not_its_lines_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("the lines sum to 5.00, not 4.00")):
        CreditNoteDocument(
            seller=SELLER,
            customer=Party(name="C"),
            credit_note_number="CN-1",
            invoice_number="INV-1",
            invoice_date=None,
            status="DRAFT",
            note_type="REFUND",
            reason="DUPLICATE",
            memo=None,
            currency="USD",
            issue_date=date(2026, 1, 1),
            lines=NOTE_LINES,
            total=Decimal("4.00"),
        )


def test_the_seller_address_is_one_line_per_line_of_text() -> None:
    seller = Party.seller("  Acme  ", "Street 1\r\n\n  City, Country \n")
    assert (seller.name, seller.address) == ("Acme", ("Street 1", "City, Country"))
