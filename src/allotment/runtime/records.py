"""What an entitlement request says about itself, for its audit record, and how the record is
built from its parts. The record itself, which analytics drains from the hot path's ring
(runtime/audit_ring.py), is `persistence.store_ports.AuditRecord`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.domain.replies import Decision
from allotment.persistence.store_ports import AuditRecord

__all__ = ("EvaluationContext", "audit_record")


class EvaluationContext(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What an entitlement request says about itself, for its audit record (ENT-30)."""

    method: str  # "GET" (check) or "POST" (evaluate)
    event_name: str | None = None
    meta: dict[str, Any] | None = None
    flow_id: str | None = None
    idempotency_key: str | None = None


def audit_record(
    at: datetime,
    customer_id: uuid.UUID,
    external_id: str,
    feature_key: str,
    requested: Decimal | None,
    decision: Decision,
    audit: EvaluationContext,
) -> AuditRecord:
    """The audit record of one check or evaluate (ENT-30), from the parts the hot path keeps
    (runtime/audit_ring.py)."""
    return AuditRecord(
        at=at,
        customer_id=customer_id,
        external_id=external_id,
        feature_key=feature_key,
        allowed=decision.allowed,
        method=audit.method,
        reason=decision.reason,
        requested_units=requested,
        would_exceed_limit=decision.simulation.would_exceed_limit if decision.simulation else None,
        event_name=audit.event_name,
        meta=audit.meta,
        flow_id=audit.flow_id,
        idempotency_key=audit.idempotency_key,
    )
