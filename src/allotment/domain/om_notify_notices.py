"""What an OpenMeter notification says (OM-142..OM-145): the two notices a rule raises, as
domain values. Each carries everything the document's `NotificationEvent` payload shows (the
entitlement, its feature, the customer and subject, the value, the threshold) and the rule's
channels at the instant it was decided, so rendering it needs no state and a replay renders
the same bytes (`webhooks/om_payloads.py`)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from allotment.domain.catalog import Feature
from allotment.domain.notice_marks import NoticeMarks
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_notify_rules import Threshold, threshold_key
from allotment.domain.om_state import EntitlementDefinition
from allotment.domain.state import OpenMeterDetails, Profile

__all__ = (
    "CustomerView",
    "EntitlementBalanceThreshold",
    "EntitlementResetNotice",
    "OmNotice",
    "fired_key",
    "remember_threshold",
)


class CustomerView(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """What the payload's `customer` and `subject` show of the customer (OM-25's fields)."""

    created_at: datetime
    modified_at: datetime
    profile: Profile = Profile()
    details: OpenMeterDetails | None = None


class _OmNotice(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="kind"):
    rule_id: str
    channels: tuple[str, ...]  # the rule's, when decided: an addressed event (OM-144)
    entitlement: EntitlementDefinition
    period_start: datetime | None
    period_end: datetime | None
    anchor: datetime | None  # of the usage period's grid
    last_reset: datetime | None
    feature: Feature
    customer: CustomerView
    value: EntitlementValue


class EntitlementBalanceThreshold(_OmNotice, tag="om_balance_threshold", frozen=True, kw_only=True):
    """OM-142, OM-143: `threshold` of the rule holds for the entitlement, for the first time
    in the usage period starting at `period_start`."""

    threshold: Threshold


class EntitlementResetNotice(_OmNotice, tag="om_entitlement_reset", frozen=True, kw_only=True):
    """OM-145: the entitlement's usage was reset (a new period began at `period_start`)."""


OmNotice = EntitlementBalanceThreshold | EntitlementResetNotice


def fired_key(rule_id: str, entitlement_id: str, period_start: datetime | None) -> str:
    """The key of one (rule, entitlement, usage period): each threshold fires once under it."""
    start = period_start.isoformat() if period_start is not None else "-"
    return f"{rule_id}/{entitlement_id}/{start}"


def remember_threshold(marks: NoticeMarks, notice: EntitlementBalanceThreshold) -> None:
    """Record that the threshold fired in its period (OM-143). The first mark of a new period
    drops the rule's marks of the entitlement's past periods, which can never fire again, so
    the marks stay bounded (one period per rule and entitlement). Run by `evolve` only."""
    key = fired_key(notice.rule_id, notice.entitlement.id, notice.period_start)
    fired = marks.om_thresholds
    if key not in fired:
        prefix = f"{notice.rule_id}/{notice.entitlement.id}/"
        for past in [k for k in fired if k.startswith(prefix)]:
            del fired[past]
    fired.setdefault(key, []).append(threshold_key(notice.threshold))
