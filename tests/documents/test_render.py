"""Invoice and credit-note PDFs read back with pypdf (docs/credit-notes.md, CN-D1..CN-D5)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import cast

import pypdf
import pytest
from msgspec.structs import replace
from pypdf.generic import DictionaryObject

from allotment.documents import DocumentLine, render_credit_note, render_invoice
from tests.documents.samples import (
    CUSTOMER,
    LINES,
    contains_run,
    credit_note,
    invoice,
    page_lines,
    priced,
)

HEADER = ["Description", "Qty", "Unit price", "Amount"]


def test_an_invoice_shows_seller_customer_numbers_lines_totals_and_currency() -> None:
    """CN-D1, CN-D4: every part of the invoice is in its text, the Unicode name included."""
    [page] = page_lines(render_invoice(invoice()))
    assert page[:4] == ["Allotment Cloud GmbH", "Hauptstraße 5", "10115 Berlin", "Germany"]
    assert contains_run(page, ["Bill to", CUSTOMER.name, *CUSTOMER.address, "zoe@example.com"])
    for fact in (
        ["Invoice number", "INV-000042"],
        ["Status", "DUE"],
        ["Issue date", "2026-12-01"],
        ["Due date", "2026-12-15"],
        ["Period", "2026-11-01 to 2026-12-01"],
        ["Currency", "USD"],
    ):
        assert contains_run(page, fact), fact
    assert contains_run(page, HEADER)
    assert contains_run(page, ["Plan base price: Pro", "1", "49.00", "49.00"])
    assert contains_run(page, ["Usage for api_calls: 152,000 calls", "152,000", "0.0001", "15.20"])
    assert contains_run(page, ["Credit for unused Starter", "-12.35"])  # no qty, no unit price
    assert contains_run(
        page,
        [
            "Subtotal",
            "51.85 USD",
            "Credit notes",
            "-5.00 USD",
            "Total",
            "46.85 USD",
            "Amount paid",
            "0.00 USD",
            "Amount due",
            "46.85 USD",
        ],
    )
    assert "Refunded" not in page  # printed only when something was refunded


def test_a_refunded_paid_invoice_shows_what_was_paid_and_refunded() -> None:
    """CN-D1: a REFUND note's total shows as Refunded; nothing is due once paid."""
    paid = invoice(adjustments=Decimal(0), amount_paid=Decimal("51.85"))
    refunded = replace(paid, refunded=Decimal("10.00"), status="PAID")
    [page] = page_lines(render_invoice(refunded))
    assert contains_run(page, ["Status", "PAID"])
    assert "Credit notes" not in page
    assert contains_run(
        page,
        [
            "Total",
            "51.85 USD",
            "Amount paid",
            "51.85 USD",
            "Refunded",
            "10.00 USD",
            "Amount due",
            "0.00 USD",
        ],
    )


def test_a_credit_note_names_the_invoice_it_credits_why_and_how() -> None:
    """CN-D1: number, credited invoice, type, reason, status, lines, total and memo."""
    [page] = page_lines(render_credit_note(credit_note()))
    assert page[0] == "Allotment Cloud GmbH"
    assert "CREDIT NOTE" in page
    assert contains_run(page, ["Bill to", CUSTOMER.name])
    for fact in (
        ["Credit note number", "CN-000007"],
        ["Credits invoice", "INV-000042"],
        ["Invoice date", "2026-12-01"],
        ["Status", "FINALIZED"],
        ["Type", "Adjustment"],
        ["Reason", "Billing error"],
        ["Issue date", "2026-12-03"],
        ["Currency", "USD"],
    ):
        assert contains_run(page, fact), fact
    assert contains_run(page, ["Description", "Amount"])  # a note's lines have no qty column
    assert contains_run(page, ["Usage for api_calls: 152,000 calls", "5.00"])
    assert contains_run(page, ["Total credited", "5.00 USD"])
    # CN-D4: markup characters in free text print as themselves
    assert contains_run(
        page, ["Memo", "Usage on 3 Nov was counted twice; ticket #812 <ops & billing>."]
    )


def test_the_same_document_gives_the_same_bytes_dated_by_the_document() -> None:
    """CN-D3: no clock, no random file id; the creation date is the document's issue date."""
    first = render_invoice(invoice())
    assert render_invoice(invoice()) == first
    assert render_credit_note(credit_note()) == render_credit_note(credit_note())
    meta = pypdf.PdfReader(io.BytesIO(first)).metadata
    assert meta is not None
    assert str(meta["/CreationDate"]) == str(meta["/ModDate"]) == "D:20261201000000+00'00'"
    assert meta.title == "Invoice INV-000042"
    assert meta.author == "Allotment Cloud GmbH"
    later = render_invoice(invoice(issue_date=date(2027, 1, 1)))
    assert later != first
    later_meta = pypdf.PdfReader(io.BytesIO(later)).metadata
    assert later_meta is not None
    assert str(later_meta["/CreationDate"]) == "D:20270101000000+00'00'"


def test_the_font_is_embedded_from_the_package() -> None:
    """CN-D4: text is set in the DejaVu Sans the package ships, embedded as a subset."""
    reader = pypdf.PdfReader(io.BytesIO(render_invoice(invoice())))
    resources = cast(DictionaryObject, reader.pages[0]["/Resources"])
    fonts = cast(DictionaryObject, resources["/Font"])
    embedded = {
        str(font["/BaseFont"]).split("+")[-1]
        for font in (cast(DictionaryObject, fonts[key].get_object()) for key in fonts)
        if "/FontFile2" in cast(DictionaryObject, font.get("/FontDescriptor", {}))
    }
    assert embedded >= {"DejaVuSans", "DejaVuSans-Bold"}


def test_many_lines_paginate_with_the_header_on_every_page_and_totals_on_the_last() -> None:
    """CN-D5: the lines table splits across pages, repeating its header; the totals come once,
    after the last line; every page says which of how many it is."""
    lines = tuple(priced(f"Seat {n:03d}", "1", "2.50", "2.50") for n in range(120))
    pages = page_lines(render_invoice(invoice(lines=lines, adjustments=Decimal(0))))
    count = len(pages)
    assert count >= 3
    for number, page in enumerate(pages, start=1):
        assert contains_run(page, HEADER), number
        assert page[-2:] == [
            "Allotment Cloud GmbH · Invoice INV-000042",
            f"Page {number} of {count}",
        ]
        assert ("Subtotal" in page) == (number == count)
    everything = [line for page in pages for line in page]
    for line in lines:
        assert everything.count(line.description) == 1
        assert contains_run(everything, [line.description, "1", "2.50", "2.50"])
    assert contains_run(pages[-1], ["Seat 119", "1", "2.50", "2.50", "Subtotal", "300.00 USD"])
    assert contains_run(pages[-1], ["Amount due", "300.00 USD"])


def test_a_zero_decimal_currency_prints_whole_yen() -> None:
    """CN-D2: JPY has no minor unit; amounts print without decimals, exactly."""
    lines = (
        priced("Plan base price: Pro", "1", "4900", "4900"),
        priced("Usage for tokens: 1,250,000 tokens", "1250000", "0.0012", "1500"),
    )
    [page] = page_lines(
        render_invoice(invoice(lines=lines, currency="JPY", adjustments=Decimal(400)))
    )
    assert contains_run(page, ["Currency", "JPY"])
    assert contains_run(page, ["Plan base price: Pro", "1", "4,900", "4,900"])
    assert contains_run(
        page, ["Usage for tokens: 1,250,000 tokens", "1,250,000", "0.0012", "1,500"]
    )
    assert contains_run(
        page, ["Subtotal", "6,400 JPY", "Credit notes", "-400 JPY", "Total", "6,000 JPY"]
    )
    assert not any("." in line for line in page if line.endswith(" JPY"))


@pytest.mark.parametrize("currency", ["KWD", "BHD"])
def test_a_three_decimal_currency_prints_fils(currency: str) -> None:
    """CN-D2: KWD and BHD have three decimals; every amount prints all three."""
    lines = (
        priced("Plan base price: Pro", "1", "15.5", "15.500"),
        priced("Support hours", "2.5", "4.125", "10.313"),
    )
    [page] = page_lines(
        render_invoice(invoice(lines=lines, currency=currency, adjustments=Decimal("0.813")))
    )
    assert contains_run(page, ["Plan base price: Pro", "1", "15.500", "15.500"])
    assert contains_run(page, ["Support hours", "2.5", "4.125", "10.313"])
    assert contains_run(
        page,
        [
            "Subtotal",
            f"25.813 {currency}",
            "Credit notes",
            f"-0.813 {currency}",
            "Total",
            f"25.000 {currency}",
        ],
    )
    note_lines = (DocumentLine(description="Support hours", amount=Decimal("1.1")),)
    [note] = page_lines(render_credit_note(credit_note(lines=note_lines, currency=currency)))
    assert contains_run(note, ["Support hours", "1.100"])
    assert contains_run(note, ["Total credited", f"1.100 {currency}"])


def test_a_note_without_a_memo_prints_no_memo_heading() -> None:
    [page] = page_lines(render_credit_note(credit_note(memo=None)))
    assert "Memo" not in page
    assert page[-1] == "Page 1 of 1"


def test_the_sample_lines_are_what_the_invoice_test_reads() -> None:
    """Guards the first test against a sample edited out from under it."""
    assert [line.amount for line in LINES] == [
        Decimal("49.00"),
        Decimal("15.20"),
        Decimal("-12.35"),
    ]
