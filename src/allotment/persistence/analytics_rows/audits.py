"""The `entitlement_checks` history: the audit records of checks, ENT-30."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from allotment.persistence.analytics_rows.table import Columns, Row, Table

__all__ = ("EntitlementCheckRow", "audit_rows")


class EntitlementCheckRow(Row, frozen=True, gc=False):
    table = "entitlement_checks"
    day: str  # the partition, YYYY-MM-DD
    checked_at: datetime
    customer_id: str
    external_id: str | None
    feature_key: str
    allowed: bool
    reason: str | None
    method: str
    requested_units: Decimal | None
    would_exceed_limit: bool | None
    event_name: str | None
    flow_id: str | None
    idempotency_key: str | None
    meta: str | None  # JSON


def audit_rows(audits: Sequence[Any]) -> Columns:
    """The rows of drained audit records (persistence.store_ports.AuditRecord)."""
    table = Table(EntitlementCheckRow)
    for a in audits:
        table.add(
            EntitlementCheckRow(
                day=a.at.date().isoformat(),
                checked_at=a.at,
                customer_id=str(a.customer_id),
                external_id=a.external_id,
                feature_key=a.feature_key,
                allowed=a.allowed,
                reason=a.reason,
                method=a.method,
                requested_units=a.requested_units,
                would_exceed_limit=a.would_exceed_limit,
                event_name=a.event_name,
                flow_id=a.flow_id,
                idempotency_key=a.idempotency_key,
                meta=None if a.meta is None else msgspec.json.encode(a.meta).decode(),
            )
        )
    return table.columns
