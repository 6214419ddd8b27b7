"""The answer to checkEntitlement and evaluateEntitlement on the wire."""

from __future__ import annotations

from allotment.domain.replies import Decision
from allotment.http.schemas import (
    CreditDto,
    DenialReasonDto,
    EntitlementMetaDto,
    EntitlementResponse,
    SimulationDto,
    UsageDto,
)

__all__ = ("entitlement_response",)


def entitlement_response(
    decision: Decision, reference: str, feature_key: str, flow_id: str | None
) -> EntitlementResponse:
    usage, credit, sim = decision.usage, decision.credit, decision.simulation
    return EntitlementResponse(
        referenceCustomerId=reference,
        featureKey=feature_key,
        isAllowed=decision.allowed,
        flowId=flow_id,
        meta=EntitlementMetaDto(reason=DenialReasonDto(description=decision.reason.value))
        if decision.reason is not None
        else None,
        usage=UsageDto(
            used=usage.used,
            limit=usage.limit,
            remaining=usage.remaining,
            reserved=usage.reserved or None,
        )
        if usage is not None
        else None,
        simulation=SimulationDto(
            requestedUsage=sim.requested_usage,
            projectedUsage=sim.projected_usage,
            projectedRemaining=sim.projected_remaining,
            wouldExceedLimit=sim.would_exceed_limit,
        )
        if sim is not None
        else None,
        credit=CreditDto(
            denomination=credit.denomination,
            balance=credit.balance,
            totalGranted=credit.total_granted,
            totalConsumed=credit.total_consumed,
            hardLimit=credit.hard_limit,
            reserved=credit.reserved or None,  # RSV-9, RSV-29: only when something is held
            available=credit.available if credit.reserved else None,
        )
        if credit is not None
        else None,
    )
