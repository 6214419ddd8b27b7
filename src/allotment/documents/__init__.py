"""Invoice and credit-note documents (PDF): an edge module, like http/, that the domain never
imports (import-linter). `model.py` holds the view models, `build.py` fills one from the
domain's invoice state, `render.py` lays them out with reportlab (docs/credit-notes.md,
"Documents")."""

from __future__ import annotations

from allotment.documents.model import (
    CreditNoteDocument,
    DocumentLine,
    InvoiceDocument,
    Party,
)
from allotment.documents.render import render_credit_note, render_invoice

__all__ = (
    "CreditNoteDocument",
    "DocumentLine",
    "InvoiceDocument",
    "Party",
    "render_credit_note",
    "render_invoice",
)
