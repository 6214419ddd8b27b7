"""Which OpenMeter notifications a turn raises (OM-142..OM-146): pure, in the customer's turn,
against the rules its context's catalog holds, after the turn's facts are applied.

`notifications.notifications` calls `om_notices` with the facts a turn applied; it returns
positioned notices that become `NotificationRaised` facts of the same turn, journalled with
their cause (WHK-E36) and never decided again on replay (WHK-E37). Only a turn whose facts
touch an entitlement looks at the rules, and only when the environment has an active one, so
the Tanso hot path pays a dictionary truth test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, TypedDict, cast

from allotment.domain.catalog import Catalog, Feature
from allotment.domain.facts import Fact
from allotment.domain.notify_levels import Positioned
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_facts import (
    EntitlementReset,
    EntitlementUsed,
    GrantActivated,
    GrantRecurred,
    GrantVoided,
)
from allotment.domain.om_notify_notices import (
    CustomerView,
    EntitlementBalanceThreshold,
    EntitlementResetNotice,
    fired_key,
)
from allotment.domain.om_notify_rules import (
    NotificationRule,
    RuleKind,
    Threshold,
    ThresholdKind,
    threshold_key,
)
from allotment.domain.om_state import EntitlementDefinition, OmEntitlement, current_period
from allotment.domain.om_value import live_value
from allotment.domain.state import CustomerState

__all__ = ("MOVES", "customer_view", "om_notices", "reached")

_Move = EntitlementUsed | GrantActivated | GrantVoided | GrantRecurred
MOVES: Final = frozenset((EntitlementUsed, GrantActivated, GrantVoided, GrantRecurred))
"""Facts that move an entitlement's usage or balance: thresholds are looked at after them."""


def om_notices(state: CustomerState, facts: Sequence[Fact], catalog: Catalog) -> list[Positioned]:
    """The notices `facts` raise: each follows the last fact about its entitlement."""
    rules = [r for r in catalog.notification_rules.values() if r.active]
    if not rules:
        return []
    moved: dict[str, int] = {}  # entitlement id -> position of the last fact moving it
    reset: dict[str, int] = {}  # entitlement id -> position of its last reset in the turn
    for position, fact in enumerate(facts):
        kind = type(fact)  # exact types, not isinstance: this runs for every credit debit
        if kind in MOVES:
            moved[cast(_Move, fact).entitlement_id] = position
        elif kind is EntitlementReset:
            entitlement_id = cast(EntitlementReset, fact).entitlement_id
            reset[entitlement_id] = moved[entitlement_id] = position
    raised: list[Positioned] = []
    for entitlement_id, position in moved.items():
        ent = state.entitlements.get(entitlement_id)
        feature = catalog.features.get(ent.definition.feature_key) if ent else None
        if ent is None or feature is None or not ent.live or not ent.metered:
            continue
        value = live_value(state, ent, facts[position].at)
        common = _Common(state, ent, feature, value)
        for rule in rules:
            if not rule.covers(feature.key):
                continue
            if rule.kind is RuleKind.RESET and entitlement_id in reset:
                raised.append((reset[entitlement_id], common.reset(rule)))
            elif rule.kind is RuleKind.BALANCE_THRESHOLD:
                raised += [(position, n) for n in common.thresholds(rule)]
    return raised


def reached(threshold: Threshold, value: EntitlementValue) -> bool:
    """OM-142: whether the value is at or past the threshold. `usage_percentage` is usage
    against `totalAvailableGrantAmount`, and holds for no value while that is 0."""
    usage, balance = value.usage, value.balance
    total = value.total_available_grant_amount
    if usage is None or balance is None or total is None:
        return False  # not metered
    meaning = threshold.kind.meaning
    if meaning is ThresholdKind.USAGE_VALUE:
        return usage >= threshold.value
    if meaning is ThresholdKind.BALANCE_VALUE:
        return balance <= threshold.value
    return total > 0 and usage * 100 >= threshold.value * total


class _Fields(TypedDict):
    entitlement: EntitlementDefinition
    period_start: datetime | None
    period_end: datetime | None
    anchor: datetime | None
    last_reset: datetime | None
    feature: Feature
    customer: CustomerView
    value: EntitlementValue


class _Common:
    """What every notice of one entitlement in one turn shares."""

    __slots__ = ("_ent", "_fields", "_state")

    def __init__(
        self, state: CustomerState, ent: OmEntitlement, feature: Feature, value: EntitlementValue
    ) -> None:
        self._state, self._ent = state, ent
        period = current_period(ent)
        self._fields: _Fields = {
            "entitlement": ent.definition,
            "period_start": period[0] if period else None,
            "period_end": period[1] if period else None,
            "anchor": ent.anchor,
            "last_reset": ent.last_reset,
            "feature": feature,
            "customer": customer_view(state),
            "value": value,
        }

    def reset(self, rule: NotificationRule) -> EntitlementResetNotice:
        return EntitlementResetNotice(rule_id=rule.id, channels=rule.channels, **self._fields)

    def thresholds(self, rule: NotificationRule) -> list[EntitlementBalanceThreshold]:
        """OM-143: the rule's thresholds the value reached that have not fired in this usage
        period, in the rule's order."""
        value = self._fields["value"]
        key = fired_key(rule.id, self._ent.id, self._fields["period_start"])
        fired = self._state.notices.om_thresholds.get(key, ())
        return [
            EntitlementBalanceThreshold(
                rule_id=rule.id, channels=rule.channels, threshold=threshold, **self._fields
            )
            for threshold in rule.thresholds
            if threshold_key(threshold) not in fired and reached(threshold, value)
        ]


def customer_view(state: CustomerState) -> CustomerView:
    """What an OpenMeter payload shows of the customer (OM-25)."""
    return CustomerView(
        created_at=state.created_at,
        modified_at=state.modified_at,
        profile=state.profile,
        details=state.openmeter,
    )
