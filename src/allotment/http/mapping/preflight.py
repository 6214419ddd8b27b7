"""The pre-flight's answer on the wire (RSV-33, RSV-35, RSV-36)."""

from __future__ import annotations

from decimal import Decimal

from allotment.domain.preflight_replies import Preflighted, PreflightItem
from allotment.domain.reservation_replies import Reserved, ReserveDenied
from allotment.http.mapping.entitlements import entitlement_response
from allotment.http.mapping.reservations import denied_dto, reservation_dto
from allotment.http.schemas.preflight import (
    MoneyDto,
    PreflightItemResponse,
    PreflightResponse,
    UsageAfterDto,
)
from allotment.http.schemas.reservations import ReservationDto

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
        reservation=_reservation(answer.reservation, reservation_id, reference),
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
    reply: Reserved | ReserveDenied | None, reservation_id: str | None, reference: str
) -> ReservationDto | None:
    """RSV-36: the reservation exactly as `POST /reservations` shows it."""
    if reply is None or reservation_id is None:
        return None
    if isinstance(reply, ReserveDenied):  # RSV-5: nothing held, nothing remembered
        return denied_dto(reservation_id, reference, reply.items)
    return reservation_dto(reply.reservation, reference)


def _amount(amount: Decimal) -> str:
    """RSV-33: plain notation, never an exponent (`0E-2` would read badly)."""
    return format(amount, "f")
