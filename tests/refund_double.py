"""A `RefundIssuer` test double: records every refund asked for, and answers as told."""

from __future__ import annotations

from allotment.domain.credit_note_facts import RefundRequested
from allotment.domain.credit_note_state import RefundStatus
from allotment.runtime.ports import RefundAnswer

__all__ = ("RefundDouble",)


class RefundDouble:
    """Refunds each idempotency key once, as a provider does: a repeated key answers the
    first refund again. `status` is what the next new refund answers."""

    def __init__(self, status: RefundStatus = RefundStatus.SUCCEEDED) -> None:
        self.status = status
        self.requests: list[tuple[RefundRequested, str]] = []
        self.refunds: dict[str, RefundAnswer] = {}

    async def issue(self, request: RefundRequested, idempotency_key: str) -> RefundAnswer:
        self.requests.append((request, idempotency_key))
        known = self.refunds.get(idempotency_key)
        if known is None:
            reference = f"re_{len(self.refunds) + 1}"
            known = self.refunds[idempotency_key] = RefundAnswer(
                status=self.status, reference=reference
            )
        return known
