"""Invoice and credit-note PDFs from their view models (docs/credit-notes.md, CN-D1..CN-D6).

Layout: the seller and the document's title and facts side by side, the customer ("Bill to"),
the lines as a table whose header repeats on every page, then the totals, kept together after
the last line (CN-D5), and a footer on every page naming the document and "Page n of m".
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from allotment.documents import text
from allotment.documents.model import CreditNoteDocument, DocumentLine, InvoiceDocument, Party
from allotment.documents.pages import BOLD, MARGIN, PAGE, REGULAR, canvas_maker, ensure_fonts

__all__ = ("render_credit_note", "render_invoice")

_WIDTH = PAGE[0] - 2 * MARGIN
_FRAME_PADDING = 6  # points reportlab's frame keeps inside the margins; the margins absorb it
_FIGURES = (22 * mm, 28 * mm, 30 * mm)  # the qty, unit price and amount columns
_FACTS = (32 * mm, 58 * mm)  # label and value of the document's facts, top right
_TOTALS = (50 * mm, 40 * mm)
_CELL_PADDING = 4
_RULE = colors.HexColor("#9aa5b1")
_SHADE = colors.HexColor("#eef1f4")


def _style(
    name: str, size: float = 9, *, bold: bool = False, right: bool = False
) -> ParagraphStyle:
    return ParagraphStyle(
        name,
        fontName=BOLD if bold else REGULAR,
        fontSize=size,
        leading=size * 1.3,
        alignment=TA_RIGHT if right else 0,
    )


_BODY = _style("body")
_NAME = _style("name", 13, bold=True)
_TITLE = _style("title", 20, bold=True, right=True)
_HEAD = _style("head", bold=True)
_HEAD_RIGHT = _style("head-right", bold=True, right=True)
_RIGHT = _style("right", right=True)
_BOLD_RIGHT = _style("bold-right", bold=True, right=True)


def render_invoice(document: InvoiceDocument) -> bytes:
    """The invoice as PDF bytes; the same document gives the same bytes (CN-D3)."""
    ensure_fonts()  # before any Paragraph: each one resolves its font when made
    d = document
    facts = [
        ("Invoice number", d.invoice_number),
        ("Status", d.status),
        ("Issue date", text.when(d.issue_date)),
        ("Due date", text.when(d.due_date)),
    ]
    if d.period_start is not None and d.period_end is not None:
        facts.append(("Period", f"{text.when(d.period_start)} to {text.when(d.period_end)}"))
    facts.append(("Currency", d.currency))
    totals = [("Subtotal", d.subtotal, False)]
    if d.adjustments:
        totals.append(("Credit notes", -d.adjustments, False))
    totals += [("Total", d.total, True), ("Amount paid", d.amount_paid, False)]
    if d.refunded:
        totals.append(("Refunded", d.refunded, False))
    totals.append(("Amount due", d.amount_due, True))
    flow = [
        *_heading(d.seller, "INVOICE", facts),
        *_bill_to(d.customer),
        _lines_table(d.lines, d.currency),
        _totals(totals, d.currency),
    ]
    footer = f"{d.seller.name} · Invoice {d.invoice_number}"
    return _build(flow, footer, d, title=f"Invoice {d.invoice_number}")


def render_credit_note(document: CreditNoteDocument) -> bytes:
    """The credit note as PDF bytes, naming the invoice it credits (CN-D1, CN-D3)."""
    ensure_fonts()
    d = document
    facts = [
        ("Credit note number", d.credit_note_number),
        ("Credits invoice", d.invoice_number),
        ("Invoice date", text.when(d.invoice_date)),
        ("Status", d.status),
        ("Type", text.label(d.note_type)),
        ("Reason", text.label(d.reason)),
        ("Issue date", text.when(d.issue_date)),
        ("Currency", d.currency),
    ]
    flow = [
        *_heading(d.seller, "CREDIT NOTE", facts),
        *_bill_to(d.customer),
        _lines_table(d.lines, d.currency),
        _totals([("Total credited", d.total, True)], d.currency),
    ]
    if d.memo:
        flow += [Spacer(1, 6 * mm), Paragraph("Memo", _HEAD), Paragraph(_markup(d.memo), _BODY)]
    footer = f"{d.seller.name} · Credit note {d.credit_note_number}"
    return _build(flow, footer, d, title=f"Credit note {d.credit_note_number}")


def _build(
    flow: list[Flowable],
    footer: str,
    document: InvoiceDocument | CreditNoteDocument,
    *,
    title: str,
) -> bytes:
    buffer = io.BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN - _FRAME_PADDING,
        rightMargin=MARGIN - _FRAME_PADDING,
        topMargin=MARGIN - _FRAME_PADDING,
        bottomMargin=MARGIN - _FRAME_PADDING,
        title=title,
        author=document.seller.name,
        subject=f"{title} for {document.customer.name}",
        creator="allotment",
        invariant=True,
    )
    template.build(flow, canvasmaker=canvas_maker(footer, document.issue_date))
    return buffer.getvalue()


def _heading(seller: Party, title: str, facts: Sequence[tuple[str, str]]) -> list[Flowable]:
    """Seller on the left; the title and the document's facts on the right."""
    left: list[Flowable] = [Paragraph(_markup(seller.name), _NAME), *_party_lines(seller)]
    rows = [[Paragraph(_markup(k), _BODY), Paragraph(_markup(v), _BOLD_RIGHT)] for k, v in facts]
    right_table = Table(rows, colWidths=_FACTS)
    right_table.setStyle(_compact())
    right: list[Flowable] = [Paragraph(title, _TITLE), Spacer(1, 3 * mm), right_table]
    outer = Table([[left, right]], colWidths=(_WIDTH - sum(_FACTS), sum(_FACTS)))
    outer.setStyle(TableStyle([*_compact().getCommands(), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [outer, Spacer(1, 8 * mm)]


def _bill_to(customer: Party) -> list[Flowable]:
    return [
        Paragraph("Bill to", _HEAD),
        Paragraph(_markup(customer.name), _BODY),
        *_party_lines(customer),
        Spacer(1, 8 * mm),
    ]


def _party_lines(party: Party) -> list[Flowable]:
    lines = [*party.address, *([party.email] if party.email else [])]
    return [Paragraph(_markup(line), _BODY) for line in lines]


def _lines_table(lines: Sequence[DocumentLine], currency: str) -> LongTable:
    """One row per line; LongTable splits across pages and repeats the header row (CN-D5).
    Qty and unit price get columns only when some line has them (a note's lines have not)."""
    split = any(line.quantity is not None or line.unit_price is not None for line in lines)
    header = [Paragraph("Description", _HEAD)]
    header += [Paragraph("Qty", _HEAD_RIGHT), Paragraph("Unit price", _HEAD_RIGHT)] if split else []
    rows: list[list[Flowable]] = [[*header, Paragraph("Amount", _HEAD_RIGHT)]]
    for line in lines:
        row = [Paragraph(_markup(line.description), _BODY)]
        if split:
            qty = text.quantity(line.quantity) if line.quantity is not None else ""
            unit = text.money(line.unit_price, currency) if line.unit_price is not None else ""
            row += [Paragraph(qty, _RIGHT), Paragraph(unit, _RIGHT)]
        rows.append([*row, Paragraph(text.money(line.amount, currency), _RIGHT)])
    figures = _FIGURES if split else _FIGURES[-1:]
    table = LongTable(rows, colWidths=(_WIDTH - sum(figures), *figures), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, _RULE),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, _RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
                ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ]
        )
    )
    return table


def _totals(rows: Sequence[tuple[str, Decimal, bool]], currency: str) -> KeepTogether:
    """Label and amount with its currency, right-aligned under the amounts, bold where it is
    the figure that counts; kept together so the totals never split across a page."""
    cells: list[list[Flowable]] = []
    for name, amount, strong in rows:
        style = _BOLD_RIGHT if strong else _RIGHT
        figure = text.money_with_code(amount, currency)
        cells.append([Paragraph(name, style), Paragraph(figure, style)])
    table = Table(cells, colWidths=_TOTALS, hAlign="RIGHT")
    table.setStyle(
        TableStyle(
            [
                *_compact().getCommands(),
                ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),  # amounts align with the lines'
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, _RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return KeepTogether([Spacer(1, 4 * mm), table])


def _compact() -> TableStyle:
    return TableStyle(
        [
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]
    )


def _markup(value: str) -> str:
    """Paragraphs read a small markup language: a customer's '<' or '&' must stay text."""
    return escape(value)
