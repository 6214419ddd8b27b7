"""The refund edge (CN-47): `RefundIssuer` through the payment gateway (Stripe's SDK), and
Stripe's refund webhooks read back as `RecordRefund` reports."""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

from allotment.domain.credit_note_commands import RecordRefund
from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_state import RefundStatus
from allotment.domain.money import to_minor_units
from allotment.payments.ports import PaymentGateway
from allotment.runtime.ports import RefundAnswer

__all__ = ("REFUND_EVENTS", "GatewayRefundIssuer", "refund_reports", "refund_status")

# Stripe's refund statuses; `pending` and `requires_action` are still under way.
_STATUSES: Final = {
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
REFUND_EVENTS: Final = frozenset(("charge.refunded", "charge.refund.updated", "refund.updated"))


def refund_status(stripe_status: str) -> RefundStatus:
    return _STATUSES.get(stripe_status, RefundStatus.PROCESSING)


class GatewayRefundIssuer:
    """Refunds the checkout payment that paid the invoice, with the caller's idempotency key
    (stable per note), so a retry after a crash returns the refund made before."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    async def issue(self, request: RefundRequested, idempotency_key: str) -> RefundAnswer:
        if request.payment_session is None:  # no provider payment: refunded by hand
            return RefundAnswer(status=RefundStatus.PENDING)
        refund_id, status = await self._gateway.refund(
            request.payment_session,
            to_minor_units(request.amount, request.currency),
            {"credit_note_id": str(request.note_id), "invoice_id": str(request.invoice_id)},
            idempotency_key,
        )
        return RefundAnswer(status=refund_status(status), reference=refund_id)


def refund_reports(payload: bytes) -> list[RecordRefund]:
    """The refunds a verified refund event reports, for the notes they name in their metadata:
    `charge.refunded` lists the charge's refunds; `refund.updated` is one refund."""
    event: dict[str, Any] = json.loads(payload)
    found = event.get("data", {}).get("object", {})
    refunds = (
        found.get("refunds", {}).get("data", []) if found.get("object") == "charge" else [found]
    )
    reports = []
    for refund in refunds:
        raw = (refund.get("metadata") or {}).get("credit_note_id")
        try:
            note_id = uuid.UUID(str(raw))
        except ValueError:
            continue  # a refund made outside allotment
        status = refund_status(str(refund.get("status")))
        reports.append(RecordRefund(note_id=note_id, status=status, reference=refund.get("id")))
    return reports
