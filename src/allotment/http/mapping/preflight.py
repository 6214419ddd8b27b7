"""The pre-flight's answer on the wire (RSV-33, RSV-35, RSV-36)."""

from __future__ import annotations

from decimal import Decimal

from allotment.domain.preflight_replies import Preflighted, PreflightItem
from allotment.domain.reservation_replies import Reserved, ReserveDenied
from allotment.http.mapping.entitlements import entitlement_response
from allotment.http.schemas.preflight import (
    MoneyDto,
    PreflightItemResponse,
    PreflightReservationDto,
    PreflightResponse,
    UsageAfterDto,
)

__all__ = ("preflight_response",)


def preflight_response(
    answer: Preflighted, reference: str, reservation_id: str | None
) -> PreflightResponse:
    totals = [MoneyDto(amount=_amount(total), currency=code) for code, total in answer.totals]
    first_denial = next(
        (i.decision.decision.reason for i in answer.items if not i.decision.decision.allowed),
        None,
    )
    return PreflightResponse(
        customerReferenceId=reference,
        isAllowed=answer.allowed,
        reason=first_denial.value if first_denial is not None else None,
        estimatedTotal=totals[0] if len(totals) == 1 else None,  # RSV-33: none when mixed
        estimatedTotals=totals,
        items=[_item(item, reference) for item in answer.items],
        reservation=_reservation(answer.reservation, reservation_id),
    )


def _item(item: PreflightItem, reference: str) -> PreflightItemResponse:
    decided, charge, after = item.decision, item.charge, item.usage_after
    return PreflightItemResponse(
        featureKey=decided.feature_key,
        units=decided.units,
        isAllowed=decided.decision.allowed,
        entitlement=entitlement_response(decided.decision, reference, decided.feature_key, None),
        usageAfter=UsageAfterDto(
            used=after.used, reserved=after.reserved, limit=after.limit, remaining=after.remaining
        )
        if after is not None
        else None,
        credits=charge.credits,
        billableUnits=charge.billable_units,
        estimatedCharge=_amount(charge.charge),
        currency=charge.currency,
    )


def _reservation(
    reply: Reserved | ReserveDenied | None, reservation_id: str | None
) -> PreflightReservationDto | None:
    if reply is None or reservation_id is None:
        return None
    if isinstance(reply, ReserveDenied):  # RSV-5: nothing held, nothing remembered
        return PreflightReservationDto(id=reservation_id, isAllowed=False, status="DENIED")
    held = reply.reservation
    return PreflightReservationDto(
        id=held.id,
        isAllowed=True,
        status=held.status.value,
        overage=held.overage.value,
        createdAt=held.created_at,
        expiresAt=held.expires_at,
    )


def _amount(amount: Decimal) -> str:
    """RSV-33: plain notation, never an exponent (`0E-2` would read badly)."""
    return format(amount, "f")
