"""What the customer's notifications so far remember, so that each fires once (WHK-E2, WHK-E12).

Only `evolve` of a `NotificationRaised` fact changes these marks, so they replay from the
journal like the rest of the state, and a snapshot written before they existed decodes them
empty. They stay bounded: the first threshold of a subscription's period drops the marks of its
past periods, which can never fire again (WHK-E6), so a subscription keeps at most one
period's marks per feature however long it lives.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import msgspec

__all__ = ("BalanceLevel", "NoticeMarks", "forget_past_periods", "threshold_key")


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
    # OM-143: the OpenMeter thresholds fired, by om_notify_notices.fired_key(rule, entitlement,
    # period); each list holds om_notify_rules.threshold_key values
    om_thresholds: dict[str, list[str]] = msgspec.field(default_factory=dict)


def threshold_key(subscription_id: uuid.UUID, feature_key: str, period_start: datetime) -> str:
    """The key of one (subscription, feature, period): thresholds fire once under it."""
    return f"{subscription_id}/{feature_key}/{period_start.isoformat()}"


def forget_past_periods(marks: NoticeMarks, subscription_id: uuid.UUID, current: datetime) -> None:
    """WHK-E6: drop the threshold marks of `subscription_id`'s periods before `current`.

    Only an event counted in the current period can reach a threshold (WHK-E1: not one dated
    in a past period), so a past period's marks are never read again. Run from `evolve`, on
    the first threshold of a new period, so replay drops exactly the same keys.
    """
    prefix = f"{subscription_id}/"
    past = [
        key
        for key in marks.usage_thresholds
        if key.startswith(prefix) and datetime.fromisoformat(key.rpartition("/")[2]) < current
    ]
    for key in past:
        del marks.usage_thresholds[key]
