"""An event as the webhook machinery sends it (`payloads.py` renders them from facts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ("OutboundEvent",)


class OutboundEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # "msg_" + notification_id.hex (an OpenMeter event's ULID): webhook-id, stable forever
    type: str  # e.g. "entitlement.usage.threshold"
    timestamp: datetime  # when the notification was decided (the fact's `at`, UTC)
    data: dict[str, Any]  # the payload, camelCase, JSON-ready (Decimal as strings)
    # OpenMeter events (OM-144): sent only to these endpoints (the rule's channels), with
    # `id` in the body as OpenMeter's payload has it; `about` names what the notification
    # API filters them by (rule, feature, subject), and is never sent.
    endpoints: tuple[str, ...] | None = None
    about: dict[str, str] = msgspec.field(default_factory=dict)
