"""What an entitlement request says about itself, for its audit record. The record itself,
which the hot path hands to analytics through a bounded buffer, is
`persistence.store_ports.AuditRecord`."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ("EvaluationContext",)


class EvaluationContext(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What an entitlement request says about itself, for its audit record (ENT-30)."""

    method: str  # "GET" (check) or "POST" (evaluate)
    event_name: str | None = None
    meta: dict[str, Any] | None = None
    flow_id: str | None = None
    idempotency_key: str | None = None
