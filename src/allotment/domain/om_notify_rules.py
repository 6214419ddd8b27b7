"""The values of OpenMeter notification rules (issue 17 item 7, OM-140..OM-149): a rule, its
thresholds and the environment fact that journals it. Kept apart from the rules' checks
(`om_notify.py`) because the catalog holds rules and must not import what imports it."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

__all__ = (
    "NotificationRule",
    "NotificationRuleSet",
    "RuleKind",
    "Threshold",
    "ThresholdKind",
    "threshold_key",
)


class RuleKind(enum.StrEnum):
    BALANCE_THRESHOLD = "entitlements.balance.threshold"
    RESET = "entitlements.reset"


class ThresholdKind(enum.StrEnum):
    """The document's threshold types; NUMBER and PERCENT are its deprecated aliases of
    `usage_value` and `usage_percentage`, kept as given so a rule reads back as written."""

    BALANCE_VALUE = "balance_value"
    USAGE_PERCENTAGE = "usage_percentage"
    USAGE_VALUE = "usage_value"
    NUMBER = "NUMBER"
    PERCENT = "PERCENT"

    @property
    def meaning(self) -> ThresholdKind:
        """What the threshold measures: an alias resolved to the type it stands for."""
        return _ALIASES.get(self, self)


_ALIASES: Final = {
    ThresholdKind.NUMBER: ThresholdKind.USAGE_VALUE,
    ThresholdKind.PERCENT: ThresholdKind.USAGE_PERCENTAGE,
}


class Threshold(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    value: Decimal
    kind: ThresholdKind


def threshold_key(threshold: Threshold) -> str:
    """The threshold's identity among the marks of what already fired (OM-143): its meaning
    and its value, so NUMBER 80 and usage_value 80 are one threshold."""
    return f"{threshold.kind.meaning.value}:{threshold.value.normalize():f}"


class NotificationRule(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One rule as the document's `NotificationRule` has it, `features` resolved to keys
    (empty: every feature)."""

    id: str  # a ULID
    kind: RuleKind
    name: str
    channels: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    thresholds: tuple[Threshold, ...] = ()
    features: tuple[str, ...] = ()
    disabled: bool = False
    metadata: dict[str, str] | None = None
    deleted_at: datetime | None = None

    @property
    def active(self) -> bool:
        return not self.disabled and self.deleted_at is None

    def covers(self, feature_key: str) -> bool:
        return not self.features or feature_key in self.features


class NotificationRuleSet(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="om_notification_rule_set"
):
    """At `at`, `rule` was created, replaced the rule with its id, or was deleted (its
    `deleted_at` set). An environment fact."""

    at: datetime
    rule: NotificationRule
