"""Flexprice's shapes of credit notes and invoices (CN-40): snake_case, money as decimal strings,
Flexprice's enums. Built from the domain's values only; the routes read them from state."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import msgspec
from litestar import MediaType, Response

from allotment.domain.credit_note_commands import InvoiceTotals
from allotment.domain.credit_note_state import CreditNote
from allotment.domain.money import minor_unit_exponent
from allotment.domain.state import CustomerState, Invoice, InvoiceStatus, InvoiceType
from allotment.http.flexprice.errors import invalid

__all__ = (
    "amount",
    "decode",
    "flex_json",
    "invoice_json",
    "invoice_status",
    "money",
    "newest_first",
    "note_json",
    "page",
    "parse_id",
)

T = TypeVar("T")
_ENCODER: Final = msgspec.json.Encoder()  # Decimal leaves as a string (CN-40)
_PUBLISHED: Final = "published"  # Flexprice's soft-delete `status`: nothing here is deleted
_DRAFT: Final = frozenset((InvoiceStatus.PENDING,))
_VOIDED: Final = frozenset(
    (InvoiceStatus.VOID, InvoiceStatus.CANCELLED, InvoiceStatus.CANCELLED_PROCESSED)
)
# msgspec's messages end "- at `$.line_items[0].amount`"; a missing field is named before.
_AT: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING: Final = re.compile(r"missing required field `(?P<name>[^`]+)`")


def flex_json(payload: Any, status: int = 200) -> Response[Any]:
    return Response(content=_ENCODER.encode(payload), status_code=status, media_type=MediaType.JSON)


def decode(body: bytes, kind: type[T]) -> T:
    """A request body decoded strictly, or a `validation_error` naming the field at fault."""
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as error:
        text = str(error)
        at = _AT.search(text)
        path = at.group("path") if at else ""
        missing = _MISSING.search(text)
        if missing:
            path = f"{path}.{missing.group('name')}" if path else missing.group("name")
        message = _AT.sub("", text)
        raise invalid(path or "body", message) from None
    except msgspec.DecodeError as error:
        raise invalid("body", f"not valid JSON ({error})") from None


def parse_id(field: str, raw: str) -> uuid.UUID | None:
    """An id as allotment writes them (a UUID); None for anything else: no such resource."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def money(field: str, raw: str | int) -> Decimal:
    """A decimal string (or an integer) as an exact amount; never through float (CN-40)."""
    try:
        parsed = Decimal(raw)
    except InvalidOperation:
        raise invalid(field, f"{raw!r} is not a decimal amount") from None
    if not parsed.is_finite():
        raise invalid(field, f"{raw!r} is not a decimal amount")
    return parsed


def amount(value: Decimal, currency: str) -> str:
    """A decimal string with at least the currency's minor-unit places, never fewer digits
    than the amount has: 0 in USD is "0.00", a 0.0015 unit price stays "0.0015" (CN-40)."""
    places = minor_unit_exponent(currency)
    if -value.as_tuple().exponent < places:  # type: ignore[operator]
        value = value.quantize(Decimal(1).scaleb(-places))
    return str(value)


def invoice_status(invoice: Invoice) -> str:
    """Flexprice's invoice lifecycle: a PENDING Tanso invoice is a DRAFT; a void or cancelled
    one VOIDED; every other has been issued, FINALIZED (CN-42)."""
    if invoice.status in _DRAFT:
        return "DRAFT"
    return "VOIDED" if invoice.status in _VOIDED else "FINALIZED"


def note_json(note: CreditNote, customer_id: uuid.UUID, environment: str) -> dict[str, Any]:
    """Flexprice's `CreditNoteResponse` (CN-40)."""
    body: dict[str, Any] = {
        "id": str(note.id),
        "invoice_id": str(note.invoice_id),
        "customer_id": str(customer_id),
        "subscription_id": str(note.subscription_id),
        "credit_note_type": note.type.value,
        "credit_note_status": note.status.value,
        "reason": note.reason.value,
        "currency": note.currency,
        "total_amount": amount(note.total, note.currency),
        "memo": note.memo,
        "metadata": _metadata(note),
        "idempotency_key": note.idempotency_key,
        "credit_note_number": note.number,
        "refund_status": note.refund_status.value if note.refund_status else None,
        "finalized_at": note.finalized_at,
        "voided_at": note.voided_at,
        "environment_id": environment,
        "status": _PUBLISHED,
        "created_at": note.created_at,
        "updated_at": note.modified_at,
        "line_items": [
            {
                "id": str(line.id),
                "credit_note_id": str(note.id),
                "invoice_line_item_id": str(line.invoice_line_id),
                "display_name": line.display_name,
                "amount": amount(line.amount, note.currency),
                "currency": note.currency,
                "metadata": line.metadata,
                "environment_id": environment,
                "status": _PUBLISHED,
                "created_at": note.created_at,
                "updated_at": note.modified_at,
            }
            for line in note.lines
        ],
    }
    return {k: v for k, v in body.items() if v is not None}


def _metadata(note: CreditNote) -> dict[str, str]:
    """The caller's metadata, plus the link to the Tanso invoice carrying an allotment credit
    (CN-30, CN-31): visible here and in analytics, never on the Tanso side."""
    if note.tanso_invoice_id is None:
        return note.metadata
    return {**note.metadata, "tanso_invoice_id": str(note.tanso_invoice_id)}


def invoice_json(
    state: CustomerState,
    invoice: Invoice,
    totals: InvoiceTotals,
    environment: str,
    *,
    lines: bool = True,
) -> dict[str, Any]:
    """Flexprice's `InvoiceResponse` of a Tanso invoice and its running totals (CN-42)."""
    body: dict[str, Any] = {
        "id": str(invoice.id),
        "invoice_number": totals.number,
        "customer_id": str(state.id),
        "subscription_id": str(invoice.subscription_id),
        "invoice_type": "CREDIT" if invoice.type is InvoiceType.CREDIT else "SUBSCRIPTION",
        "invoice_status": invoice_status(invoice),
        "payment_status": totals.payment_status.value,
        "currency": invoice.currency,
        "subtotal": amount(invoice.amount, invoice.currency),
        "total": amount(invoice.amount, invoice.currency),
        "amount_due": amount(totals.amount_due, invoice.currency),
        "amount_paid": amount(totals.amount_paid, invoice.currency),
        "amount_remaining": amount(totals.amount_remaining, invoice.currency),
        "adjustment_amount": amount(totals.adjustment_amount, invoice.currency),
        "refunded_amount": amount(totals.refunded_amount, invoice.currency),
        "due_date": invoice.due_date,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "metadata": {"tanso_status": invoice.status.value, "tanso_type": invoice.type.value},
        "environment_id": environment,
        "status": _PUBLISHED,
        "created_at": invoice.created_at,
        "updated_at": invoice.modified_at,
    }
    if lines:
        body["line_items"] = [
            {
                "id": str(item.id),
                "invoice_id": str(invoice.id),
                "customer_id": str(state.id),
                "subscription_id": str(invoice.subscription_id),
                "display_name": item.description,
                "amount": amount(item.charge_amount, invoice.currency),
                "currency": invoice.currency,
                "period_start": invoice.period_start,
                "period_end": invoice.period_end,
                "environment_id": environment,
                "status": _PUBLISHED,
                "created_at": item.created_at,
                "updated_at": item.created_at,
            }
            for item in invoice.items
        ]
    return {k: v for k, v in body.items() if v is not None}


def page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """Flexprice's `ListResponse`: one page of `items` and `pagination` {total, limit, offset}."""
    return {
        "items": items[offset : offset + limit],
        "pagination": {"total": len(items), "limit": limit, "offset": offset},
    }


def newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flexprice's default order: `created_at` descending, ties by id."""

    def key(item: dict[str, Any]) -> tuple[datetime, str]:
        return item["created_at"], item["id"]

    return sorted(items, key=key, reverse=True)
