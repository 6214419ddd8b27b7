"""Records the hot path hands to analytics through bounded buffers."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ("AuditRecord", "EvaluationContext")


class EvaluationContext(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What an entitlement request says about itself, for its audit record (ENT-30)."""

    method: str  # "GET" (check) or "POST" (evaluate)
    event_name: str | None = None
    meta: dict[str, Any] | None = None
    flow_id: str | None = None
    idempotency_key: str | None = None


class AuditRecord(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One ENTITLEMENT_CHECKED audit event: zero usage, never billed (ENT-30, ENT-31)."""

    at: datetime
    customer_id: uuid.UUID
    external_id: str | None
    feature_key: str
    allowed: bool
    method: str
    reason: str | None = None
    requested_units: Decimal | None = None
    would_exceed_limit: bool | None = None
    event_name: str | None = None
    meta: dict[str, Any] | None = None
    flow_id: str | None = None
    idempotency_key: str | None = None
