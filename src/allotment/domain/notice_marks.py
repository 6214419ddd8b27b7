"""What the customer's notifications so far remember, so that each fires once (WHK-E2, WHK-E12).

Only `evolve` of a `NotificationRaised` fact changes these marks, so they replay from the
journal like the rest of the state, and a snapshot written before they existed decodes them
empty.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

__all__ = ("BalanceLevel", "NoticeMarks", "threshold_key")


class BalanceLevel(enum.StrEnum):
    """Where a pool's balance stands against its low-balance threshold (WHK-E10)."""

    OK = "ok"
    LOW = "low"
    DEPLETED = "depleted"


class NoticeMarks(msgspec.Struct, kw_only=True):
    # WHK-E2: percents already notified, by threshold_key(subscription, feature, period)
    usage_thresholds: dict[str, list[int]] = msgspec.field(default_factory=dict)
    # WHK-E12: the level each pool was last notified at, by denomination; absent is unknown
    pool_levels: dict[str, BalanceLevel] = msgspec.field(default_factory=dict)


def threshold_key(subscription_id: uuid.UUID, feature_key: str, period_start: datetime) -> str:
    """The key of one (subscription, feature, period): thresholds fire once under it."""
    return f"{subscription_id}/{feature_key}/{period_start.isoformat()}"
