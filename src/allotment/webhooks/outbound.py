"""An event as the webhook machinery sends it (`payloads.py` renders them from facts), and
the body a delivery of it carries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ("OutboundEvent", "body_of")


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


class _Body(msgspec.Struct, frozen=True):
    type: str
    timestamp: datetime
    data: dict[str, object]


class _OpenMeterBody(msgspec.Struct, frozen=True):
    id: str
    type: str
    timestamp: datetime
    data: dict[str, object]


_ENCODER = msgspec.json.Encoder(decimal_format="number")  # OpenMeter's numbers (OM-144)


def body_of(event: OutboundEvent) -> bytes:
    """The request body (WHK-D11): `{type, timestamp, data}`, the same bytes on every retry;
    an OpenMeter event's is its payload, `{id, type, timestamp, data}` (OM-144)."""
    if event.endpoints is not None:
        return _ENCODER.encode(_OpenMeterBody(event.id, event.type, event.timestamp, event.data))
    return _ENCODER.encode(_Body(event.type, event.timestamp, event.data))
