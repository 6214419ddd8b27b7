"""The outbound event and the event-type names (issue 15 item 3).

Owned by the wh-events branch, which adds `outbound_events` (the renderer of notification
facts); this file holds only the interface the delivery side consumes until that merges.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ("EVENT_TYPES", "TEST_EVENT", "OutboundEvent")

TEST_EVENT = "webhook.test"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "entitlement.usage.threshold",
        "credits.balance.low", "credits.balance.depleted", "credits.balance.recovered",
        "credits.grant.expired",
        "invoice.created", "invoice.paid", "invoice.past_due", "invoice.voided",
        "subscription.activated", "subscription.suspended", "subscription.renewed",
        "subscription.plan_changed", "subscription.cancellation_scheduled",
        "subscription.ended",
        "reservation.expired",
        TEST_EVENT,
    }
)  # fmt: skip


class OutboundEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the webhook-id: stable for one committed notification, across retries
    type: str
    timestamp: datetime
    data: dict[str, Any]
