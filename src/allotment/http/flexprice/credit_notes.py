"""Credit notes on Flexprice's paths (CN-40..CN-45): `POST/GET /v1/creditnotes`,
`GET /v1/creditnotes/{id}`, `POST /v1/creditnotes/{id}/finalize` and `/void`, and the note's
PDF at `GET /v1/creditnotes/{id}/pdf` (allotment's own path: the client has none)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any, Final

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteCommand,
    CreditNoteShown,
    FinalizeCreditNote,
    VoidCreditNote,
)
from allotment.domain.credit_note_state import CreditNoteReason, CreditNoteStatus, RefundStatus
from allotment.domain.credit_notes import show
from allotment.domain.replies import Rejected
from allotment.domain.state import CustomerState
from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, checkout_of, shard_of
from allotment.http.flexprice.errors import FLEX_ERRORS, from_rejection, invalid, not_found
from allotment.http.flexprice.wire import (
    decode,
    flex_json,
    money,
    newest_first,
    note_json,
    page,
    parse_id,
)
from allotment.payments.ports import PaymentProviderError
from allotment.payments.refunds import GatewayRefundIssuer
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.refunds import issue_refunds

__all__ = (
    "create_credit_note",
    "finalize_credit_note",
    "get_credit_note",
    "list_credit_notes",
    "void_credit_note",
)

ADMIN: Final = {"scope": "admin"}  # CN-41: the Flexprice surface is an operator's
_REASONS: Final = ", ".join(r.value for r in CreditNoteReason)
_STATUSES: Final = {s.value: s for s in CreditNoteStatus}
_LIMIT_MAX: Final = 1000


class _LineIn(msgspec.Struct, frozen=True):
    invoice_line_item_id: str
    amount: str | int
    display_name: str | None = None
    metadata: dict[str, str] | None = None


class _CreateIn(msgspec.Struct, frozen=True):
    """Flexprice's `CreateCreditNoteRequest`."""

    invoice_id: str
    reason: str
    line_items: list[_LineIn] | None = None
    memo: str | None = None
    metadata: dict[str, str] | None = None
    idempotency_key: str | None = None
    credit_note_number: str | None = None
    process_credit_note: bool = True
    refund_target: str | None = None


class _FinalizeIn(msgspec.Struct, frozen=True):
    refund_target: str | None = None


def _refund_target(target: str | None) -> None:
    """CN-43: a refund goes back to the payment that paid the invoice; allotment has no
    prepaid wallet to credit instead."""
    if target not in (None, "BACK_TO_SOURCE"):
        raise invalid("refund_target", f"{target!r}: only BACK_TO_SOURCE is supported")


def _create_command(body: _CreateIn) -> CreateCreditNote:
    invoice_id = parse_id("invoice_id", body.invoice_id)
    if invoice_id is None:
        raise invalid("invoice_id", f"{body.invoice_id!r} is not an invoice id")
    try:
        reason = CreditNoteReason(body.reason)
    except ValueError:
        raise invalid("reason", f"{body.reason!r} is not one of {_REASONS}") from None
    _refund_target(body.refund_target)
    lines = []
    for index, line in enumerate(body.line_items or ()):
        line_id = parse_id("", line.invoice_line_item_id)
        if line_id is None:
            raise invalid(f"line_items[{index}].invoice_line_item_id", "not a line of the invoice")
        lines.append(CreditLineRequest(
            invoice_line_id=line_id, amount=money(f"line_items[{index}].amount", line.amount),
            display_name=line.display_name, metadata=line.metadata or {},
        ))  # fmt: skip
    return CreateCreditNote(
        invoice_id=invoice_id, reason=reason, lines=tuple(lines), memo=body.memo,
        metadata=body.metadata or {}, idempotency_key=body.idempotency_key,
        number=body.credit_note_number, process=body.process_credit_note,
    )  # fmt: skip


async def _run(request: AnyRequest, command: CreditNoteCommand) -> CreditNoteShown:
    shard = shard_of(request)
    reply = await shard.credit_note(command)
    if isinstance(reply, Rejected):
        raise from_rejection(reply)  # nothing changed
    assert isinstance(reply, CreditNoteShown)
    gateway = checkout_of(request).gateway
    # CN-47: a refund a provider payment can take is issued before the reply, which then
    # shows the provider's answer
    if reply.note.refund_status is RefundStatus.PENDING and gateway is not None:
        issuer = GatewayRefundIssuer(gateway)
        with contextlib.suppress(PaymentProviderError):  # it stays PROCESSING, for a retry
            await issue_refunds(shard, issuer, note_id=reply.note.id, provider_paid_only=True)
        shown = await shard.read_on_owner(reply.note.id, _show(reply.note.id))
        return shown or reply
    return reply


def _show(note_id: uuid.UUID) -> Any:
    def project(state: CustomerState, catalog: Catalog, now: datetime) -> CreditNoteShown:
        return show(state, state.credit_notes[note_id])

    return project


def _shown(request: AnyRequest, shown: CreditNoteShown) -> dict[str, Any]:
    return note_json(shown.note, shown.customer_id, api_key_of(request.scope).environment)


@post("/creditnotes", operation_id="createCreditNote", status_code=201, opt=ADMIN,
      responses=FLEX_ERRORS, summary="Create a credit note")  # fmt: skip
async def create_credit_note(request: AnyRequest) -> Response[Any]:
    """Credits lines of one invoice (CN-1..CN-12). Finalized in the same request unless
    `process_credit_note` is false; a known `idempotency_key` answers the same note."""
    command = _create_command(decode(await request.body(), _CreateIn))
    shown = await _run(request, command)
    return flex_json(_shown(request, shown), 201)  # a replay too: the client takes only 201


@post("/creditnotes/{id:str}/finalize", operation_id="finalizeCreditNote", status_code=200,
      opt=ADMIN, responses=FLEX_ERRORS, summary="Finalize a credit note")  # fmt: skip
async def finalize_credit_note(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """DRAFT -> FINALIZED: the note credits its invoice from now on (CN-10)."""
    _refund_target(decode(await request.body(), _FinalizeIn).refund_target)
    return flex_json(_shown(request, await _run(request, FinalizeCreditNote(note_id=_note_id(id)))))


@post("/creditnotes/{id:str}/void", operation_id="voidCreditNote", status_code=200, opt=ADMIN,
      responses=FLEX_ERRORS, summary="Void a credit note")  # fmt: skip
async def void_credit_note(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """The note credits nothing any more; what it credited is given back (CN-11)."""
    return flex_json(_shown(request, await _run(request, VoidCreditNote(note_id=_note_id(id)))))


def _note_id(raw: str) -> uuid.UUID:
    note_id = parse_id("id", raw)
    if note_id is None:
        raise not_found("credit note", raw)
    return note_id


@get("/creditnotes/{id:str}", operation_id="getCreditNote", opt=ADMIN, responses=FLEX_ERRORS,
     summary="Get a credit note")  # fmt: skip
async def get_credit_note(request: AnyRequest, id: FromPath[str]) -> Response[Any]:
    """A credit note by id, with its lines."""
    note_id = _note_id(id)
    environment = api_key_of(request.scope).environment

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> dict[str, Any] | None:
        note = state.credit_notes.get(note_id)
        return None if note is None else note_json(note, state.id, environment)

    body = await shard_of(request).read_on_owner(note_id, project)
    if body is None:
        raise not_found("credit note", id)
    return flex_json(body)


@get("/creditnotes", operation_id="listCreditNotes", opt=ADMIN, responses=FLEX_ERRORS,
     summary="List credit notes")  # fmt: skip
async def list_credit_notes(request: AnyRequest) -> Response[Any]:
    """The environment's notes, newest first, filtered by `invoice_id`, `customer_id` and
    `credit_note_status` (repeatable), paged by `limit` (default 50, at most 1,000) and
    `offset` (CN-44)."""
    query = request.query_params
    statuses = {_status(raw) for raw in query.getall("credit_note_status", [])}
    invoice_id = query.get("invoice_id")
    limit = _integer(query.get("limit"), "limit", 50, 1, _LIMIT_MAX)
    offset = _integer(query.get("offset"), "offset", 0, 0, 1_000_000_000)
    environment = api_key_of(request.scope).environment

    def project(state: CustomerState, catalog: Catalog, now: datetime) -> list[dict[str, Any]]:
        return [
            note_json(note, state.id, environment)
            for note in state.credit_notes.values()
            if (invoice_id is None or str(note.invoice_id) == invoice_id)
            and (not statuses or note.status in statuses)
        ]

    shard = shard_of(request)
    customer = query.get("customer_id")
    if customer is None:
        notes = [n for found in await shard.all_customers(project) for n in found]
    else:
        customer_id = parse_id("customer_id", customer)
        found = None if customer_id is None else await shard.read(
            CustomerLookup(customer_id=customer_id), project)  # fmt: skip
        notes = found or []
    return flex_json(page(newest_first(notes), limit, offset))


def _status(raw: str) -> CreditNoteStatus:
    status = _STATUSES.get(raw)
    if status is None:
        raise invalid("credit_note_status", f"{raw!r} is not one of DRAFT, FINALIZED, VOIDED")
    return status


def _integer(raw: str | None, field: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise invalid(field, f"must be an integer from {low} to {high}")
    return int(raw)
