"""GET /api/v1/admin/unapplied-payments: money a provider took that no invoice received
(MNY-C3). Admin-scoped keys only; the caller's environment only."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec
from litestar import Response, get

from allotment.domain.money import minor_unit_exponent
from allotment.domain.payment_records import PaymentRecord
from allotment.http.context import AnyRequest, errors, shard_of
from allotment.http.errors import json_response

__all__ = ("ApiResponseUnappliedPayments", "UnappliedPaymentDto", "list_unapplied_payments")


class UnappliedPaymentDto(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One payment to refund or apply by hand. Absent fields were not in the provider's event
    (API-6: no nulls)."""

    sessionId: str
    eventType: str
    reason: str
    recordedAt: datetime
    eventId: str | None = None
    amountMinor: int | None = None  # what the provider took, in the currency's minor unit
    amount: Decimal | None = None  # the same in major units
    currency: str | None = None
    invoiceReference: str | None = None  # the invoice the payment named, as received
    invoiceId: uuid.UUID | None = None  # the invoice it could not pay (voided, paid ...)
    customerId: uuid.UUID | None = None  # absent: no customer of this environment
    stripeCustomerId: str | None = None


class ApiResponseUnappliedPayments(msgspec.Struct, kw_only=True):
    success: bool = True
    data: list[UnappliedPaymentDto]


def unapplied_payment_dto(record: PaymentRecord) -> UnappliedPaymentDto:
    p = record.payment
    amount = None
    if p.amount_minor is not None and p.currency is not None:
        amount = Decimal(p.amount_minor).scaleb(-minor_unit_exponent(p.currency))
    return UnappliedPaymentDto(
        sessionId=p.session_id, eventType=p.event_type, reason=record.reason or "",
        recordedAt=record.recorded_at, eventId=p.event_id, amountMinor=p.amount_minor,
        amount=amount, currency=p.currency, invoiceReference=p.invoice_reference,
        invoiceId=record.invoice_id, customerId=record.customer_id,
        stripeCustomerId=p.provider_customer_id,
    )  # fmt: skip


@get(
    "/unapplied-payments",
    operation_id="listUnappliedPayments",
    opt={"scope": "admin"},
    responses=errors(401, 403),
)
async def list_unapplied_payments(request: AnyRequest) -> Response[ApiResponseUnappliedPayments]:
    """Every unapplied payment of the caller's environment, oldest first (MNY-C3)."""
    records = await shard_of(request).list_unapplied_payments()
    body = ApiResponseUnappliedPayments(data=[unapplied_payment_dto(r) for r in records])
    return json_response(body)
