"""Reservations on the wire (docs/reservations.md)."""

from __future__ import annotations

from allotment.domain.reservation_replies import Committed, ItemDecision
from allotment.domain.reservation_state import HeldItem, ItemSettlement, Reservation
from allotment.http.mapping.entitlements import entitlement_response
from allotment.http.schemas.reservations import (
    ReservationCommitEventDto,
    ReservationCommitResponse,
    ReservationDto,
    ReservationItemDto,
)

__all__ = ("commit_dto", "denied_dto", "reservation_dto")


def reservation_dto(reservation: Reservation, reference: str | None) -> ReservationDto:
    items = [_item_dto(item, reference) for item in reservation.items]
    single = reservation.items[0] if len(reservation.items) == 1 else None
    return ReservationDto(
        id=reservation.id,
        customerReferenceId=reference,
        isAllowed=True,
        status=reservation.status.value,
        featureKey=single.feature_key if single else None,
        units=single.units if single else None,
        overage=reservation.overage.value,
        eventName=reservation.event_name,
        createdAt=reservation.created_at,
        expiresAt=reservation.expires_at,
        settledAt=reservation.settled_at,
        meta=reservation.meta,
        items=items,
        entitlement=items[0].entitlement,
    )


def _item_dto(item: HeldItem, reference: str | None) -> ReservationItemDto:
    settlement = item.settlement
    return ReservationItemDto(
        featureKey=item.feature_key,
        units=item.units,
        status=item.status.value,
        credits=item.credits,
        denomination=item.denomination,
        entitlement=entitlement_response(item.decision, reference or "", item.feature_key, None),
        usageUnits=settlement.usage_units if settlement else None,
        recordedUnits=settlement.recorded_units if settlement else None,
        cutUnits=settlement.cut_units if settlement else None,
        eventIdempotencyKey=settlement.event_key if settlement else None,
        settledAt=item.settled_at,
    )


def denied_dto(
    reservation_id: str, reference: str, decided: tuple[ItemDecision, ...]
) -> ReservationDto:
    """RSV-5: nothing held; every item's decision, and the first denial's reason."""
    items = [
        ReservationItemDto(
            featureKey=d.feature_key,
            units=d.units,
            status="DENIED",
            credits=d.credits,
            denomination=d.denomination,
            isAllowed=d.decision.allowed,
            entitlement=entitlement_response(d.decision, reference, d.feature_key, None),
        )
        for d in decided
    ]
    first = next(d for d in decided if not d.decision.allowed)
    single = decided[0] if len(decided) == 1 else None
    return ReservationDto(
        id=reservation_id,
        customerReferenceId=reference,
        isAllowed=False,
        status="DENIED",
        reason=first.decision.reason.value if first.decision.reason else None,
        featureKey=single.feature_key if single else None,
        units=single.units if single else None,
        items=items,
        entitlement=items[decided.index(first)].entitlement,
    )


def commit_dto(committed: Committed, reference: str | None) -> ReservationCommitResponse:
    return ReservationCommitResponse(
        reservation=reservation_dto(committed.reservation, reference),
        holdExpired=committed.hold_expired,
        events=[_event_dto(key, s) for key, s in committed.settlements.items()],
    )


def _event_dto(feature_key: str, settlement: ItemSettlement) -> ReservationCommitEventDto:
    """`POST /events`' response fields (EVT-43, EVT-44, OPS-D5) for one committed item."""
    notes = [text for text in (settlement.message, settlement.cost_unknown) if text]
    return ReservationCommitEventDto(
        featureKey=feature_key,
        usageUnits=settlement.usage_units,
        recordedUnits=settlement.recorded_units,
        cutUnits=settlement.cut_units,
        eventIdempotencyKey=settlement.event_key,
        usageLimitExceeded=True if settlement.over_limit else None,
        message=" ".join(notes) or None,
        costKnown=False if settlement.cost_unknown else None,
    )
