"""OpenMeter notification rules (issue 17 item 7, OM-140..OM-149): environment configuration,
journalled as catalog facts like meters, and kept in `Catalog.notification_rules`, so every
turn finds the rules it must decide against in its context (`ctx.catalog`), snapshots carry
them and replay rebuilds them.

A rule names its channels by id. Channels are webhook endpoints (`webhooks/`), which the
domain never sees: the HTTP layer checks that each channel exists before a rule is journalled,
and a notification carries the channel ids of its rule at the instant it was decided.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.meter_rules import CatalogRefused
from allotment.domain.om_notify_rules import (
    NotificationRule,
    NotificationRuleSet,
    RuleKind,
    Threshold,
    ThresholdKind,
    threshold_key,
)

__all__ = ("MAX_THRESHOLDS", "check_rule", "delete_rule", "feature_key_of")

MAX_THRESHOLDS: Final = 10  # the document's maxItems


def check_rule(catalog: Catalog, rule: NotificationRule) -> NotificationRuleSet:
    """createNotificationRule / updateNotificationRule (OM-141): the fact to journal, or
    `CatalogRefused` naming the field. `rule.features` holds what the client sent (feature
    ids or keys); the fact holds their keys."""
    if rule.kind is RuleKind.BALANCE_THRESHOLD:
        _check_thresholds(rule.thresholds)
    elif rule.thresholds:
        raise CatalogRefused(400, "thresholds", f"a {rule.kind.value} rule has no thresholds")
    if not rule.channels:
        raise CatalogRefused(400, "channels", "at least one channel is required")
    keys = tuple(_feature_key(catalog, i, ref) for i, ref in enumerate(rule.features))
    return NotificationRuleSet(
        at=rule.updated_at, rule=msgspec.structs.replace(rule, features=tuple(dict.fromkeys(keys)))
    )


def delete_rule(catalog: Catalog, rule_id: str, at: datetime) -> NotificationRuleSet:
    """deleteNotificationRule: soft (OM-141); a deleted rule raises nothing more."""
    rule = catalog.notification_rules.get(rule_id)
    if rule is None or rule.deleted_at is not None:
        raise CatalogRefused(404, "ruleId", f"notification rule {rule_id!r} not found")
    return NotificationRuleSet(at=at, rule=msgspec.structs.replace(rule, deleted_at=at))


def _check_thresholds(thresholds: tuple[Threshold, ...]) -> None:
    if not 1 <= len(thresholds) <= MAX_THRESHOLDS:
        raise CatalogRefused(400, "thresholds", f"must hold 1 to {MAX_THRESHOLDS} thresholds")
    seen: set[str] = set()
    for index, threshold in enumerate(thresholds):
        field = f"thresholds[{index}].value"
        value, meaning = threshold.value, threshold.kind.meaning
        if not value.is_finite() or value < 0:
            raise CatalogRefused(400, field, "must be a finite number, not negative")
        if value == 0 and meaning is not ThresholdKind.BALANCE_VALUE:
            raise CatalogRefused(400, field, f"a {threshold.kind.value} threshold must be > 0")
        key = threshold_key(threshold)
        if key in seen:
            raise CatalogRefused(400, field, "the rule already has this threshold")
        seen.add(key)


def feature_key_of(catalog: Catalog, ref: str) -> str | None:
    """The key of the feature `ref` names, by key or by id (its catalog UUID)."""
    feature = catalog.features.get(ref)
    if feature is None:
        feature = next((f for f in catalog.features.values() if str(f.id) == ref), None)
    return feature.key if feature is not None else None


def _feature_key(catalog: Catalog, index: int, ref: str) -> str:
    key = feature_key_of(catalog, ref)
    if key is None:
        raise CatalogRefused(400, f"features[{index}]", f"no feature has the id or key {ref!r}")
    return key
