"""A Tanso subscription's feature links as read-only OpenMeter entitlements (OM-150..OM-159).

A Tanso plan's feature link and an OpenMeter entitlement are two views of one customer's
state. This module derives, from the state at an instant and the catalog, the entitlement a
subscription's plan gives each feature: `metered` for a metered link (its `maxUsage` is the
balance's source, re-issued each subscription period like OpenMeter's `issueAfterReset`),
`boolean` for an `included` one. Nothing here is journalled: the views are functions of the
subscriptions, usage counters and catalog, which are (OM-156).

The value of a view is the Tanso check's answer at the same instant (OM-153): `hasAccess` is
`entitlement.evaluate(...)`'s `allowed`, and the balance, usage and overage are read from the
same counters the check reads. A native OpenMeter entitlement of the feature hides the view
(OM-154); the Tanso check never reads native entitlements.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Final

import msgspec

from allotment.domain.catalog import Catalog, FeatureLink, Plan
from allotment.domain.entitlement import evaluate
from allotment.domain.money import ZERO
from allotment.domain.om_commands import EntitlementValue
from allotment.domain.om_entitlements import live_for_feature
from allotment.domain.om_periods import Interval, parse_interval
from allotment.domain.om_state import EntitlementDefinition, EntitlementKind, OmEntitlement
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.state import AccessState, CustomerState, Subscription
from allotment.domain.usage import used_units

__all__ = (
    "DERIVED_PREFIX",
    "SOURCE_METADATA",
    "DerivedEntitlement",
    "as_entitlement",
    "derived_access",
    "derived_entitlements",
    "derived_id",
    "derived_value",
    "parse_derived_id",
    "read_only",
    "resolve_derived",
)

# OM-151: native ids are ULIDs (Crockford base32, no underscore), so the prefix and the fixed
# 32 hex digits of the subscription id tell a derived id apart and parse back unambiguously.
DERIVED_PREFIX: Final = "tanso_"
_DERIVED_ID: Final = re.compile(r"tanso_([0-9a-f]{32})_(.+)")
SOURCE_METADATA: Final = "allotment.source"


class DerivedEntitlement(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One subscription's feature link seen as an OpenMeter entitlement (OM-150, OM-152).
    `definition` has the shape of a native one, so the wire renders both alike."""

    definition: EntitlementDefinition
    subscription_id: uuid.UUID
    current_period: tuple[datetime, datetime]
    limit: Decimal | None  # the plan's `maxUsage`; None: no cap

    @property
    def id(self) -> str:
        return self.definition.id


def as_entitlement(view: DerivedEntitlement) -> OmEntitlement:
    """The view in a native entitlement's shape, for the code that renders one (OM-152): a
    transient copy, never put in the state. Its period is the subscription's."""
    start = view.current_period[0]
    return OmEntitlement(
        definition=view.definition, period_start=start, anchor=view.definition.anchor,
        last_reset=start,
    )  # fmt: skip


def derived_id(subscription_id: uuid.UUID, feature_key: str) -> str:
    """OM-151: stable for as long as the subscription governs the feature."""
    return f"{DERIVED_PREFIX}{subscription_id.hex}_{feature_key}"


def parse_derived_id(text: str) -> tuple[uuid.UUID, str] | None:
    """The subscription id and feature key a derived id names, or None if it is not one."""
    match = _DERIVED_ID.fullmatch(text)
    return None if match is None else (uuid.UUID(hex=match[1]), match[2])


def derived_entitlements(state: CustomerState, catalog: Catalog) -> list[DerivedEntitlement]:
    """OM-150, OM-154: the visible views, one per feature a live subscription's plan links and
    no live native entitlement covers, in subscription then plan order."""
    views: dict[str, DerivedEntitlement] = {}
    for feature_key, (sub, plan, link) in _governing_links(state, catalog).items():
        if live_for_feature(state, feature_key) is None:
            views[feature_key] = _view(sub, plan, link)
    return list(views.values())


def resolve_derived(
    state: CustomerState, catalog: Catalog, id_or_feature_key: str
) -> DerivedEntitlement | None:
    """A visible view by derived id or by feature key (`entitlementIdOrFeatureKey`); a derived
    id of a subscription that no longer governs its feature, or hidden by a native
    entitlement, names nothing (OM-151, OM-154)."""
    parsed = parse_derived_id(id_or_feature_key)
    feature_key = parsed[1] if parsed is not None else id_or_feature_key
    if live_for_feature(state, feature_key) is not None:
        return None
    governing = _governing_links(state, catalog).get(feature_key)
    if governing is None or (parsed is not None and governing[0].id != parsed[0]):
        return None
    return _view(*governing)


def derived_value(
    state: CustomerState, catalog: Catalog, view: DerivedEntitlement
) -> EntitlementValue:
    """OM-153: the Tanso check's answer, in OpenMeter's terms. `usage` is the period's recorded
    units (`used`, ENT-20); held units are not usage but are not there to spend either, so the
    balance is the check's `remaining` (RSV-8)."""
    feature_key = view.definition.feature_key
    allowed = evaluate(state, catalog, feature_key, None).allowed
    if view.definition.kind is EntitlementKind.BOOLEAN:
        return EntitlementValue(has_access=allowed)
    sub = state.subscriptions[view.subscription_id]
    plan = catalog.plans.get(sub.plan_id)
    link = plan.link(feature_key) if plan is not None else None
    reset_mode = link.reset_mode if link is not None else None
    used = used_units(state, sub, feature_key, reset_mode) if reset_mode is not None else ZERO
    if view.limit is None:  # no cap: nothing is granted, and nothing is over it
        return EntitlementValue(
            has_access=allowed, balance=ZERO, usage=used, overage=ZERO,
            total_available_grant_amount=ZERO,
        )  # fmt: skip
    held = state.held_units.get(feature_key, ZERO)
    return EntitlementValue(
        has_access=allowed,
        balance=max(ZERO, view.limit - used - held),
        usage=used,
        overage=max(ZERO, used - view.limit),
        total_available_grant_amount=view.limit,
    )


def derived_access(
    state: CustomerState, catalog: Catalog, native: dict[str, EntitlementValue]
) -> dict[str, EntitlementValue]:
    """OM-155: `native` (the live native entitlements' values by feature key) with the visible
    views' values added for the features it lacks."""
    values = dict(native)
    for view in derived_entitlements(state, catalog):
        values[view.definition.feature_key] = derived_value(state, catalog, view)
    return values


def read_only(view: DerivedEntitlement) -> Rejected:
    """OM-157: writes on a view are refused: change the plan or the subscription instead."""
    return Rejected(
        kind=RejectionKind.CONFLICT,
        message=(
            f"entitlement {view.id} is read-only: it is derived from Tanso subscription "
            f"{view.subscription_id}'s plan; change the plan or subscription instead."
        ),
        field="entitlement",
    )


def _governing_links(
    state: CustomerState, catalog: Catalog
) -> dict[str, tuple[Subscription, Plan, FeatureLink]]:
    """Per feature, the subscription whose link the Tanso check reads (ENT-18: the oldest
    ACTIVE one linking it), else the oldest live one (the check denies, and so does the view)."""
    active: dict[str, tuple[Subscription, Plan, FeatureLink]] = {}
    other: dict[str, tuple[Subscription, Plan, FeatureLink]] = {}
    for sub in state.subscriptions.values():
        plan = catalog.plans.get(sub.plan_id) if sub.live else None
        if plan is None:
            continue
        found = active if sub.access is AccessState.ACTIVE else other
        for link in plan.features:
            found.setdefault(link.feature_key, (sub, plan, link))
    return {**{k: v for k, v in other.items() if k not in active}, **active}


def _view(sub: Subscription, plan: Plan, link: FeatureLink) -> DerivedEntitlement:
    metered = link.metered
    definition = EntitlementDefinition(
        id=derived_id(sub.id, link.feature_key),
        feature_key=link.feature_key,
        kind=EntitlementKind.METERED if metered else EntitlementKind.BOOLEAN,
        created_at=sub.created_at,
        interval=_months(sub.interval_months) if metered else None,
        anchor=sub.first_period_start if metered else None,
        measure_usage_from=sub.first_period_start if metered else None,
        is_soft_limit=metered and link.max_usage is None,
        issue_after_reset=link.max_usage if metered else None,
        metadata={
            SOURCE_METADATA: "tanso",
            "allotment.subscriptionId": str(sub.id),
            "allotment.planKey": plan.key,
            "allotment.readOnly": "true",
        },
    )
    return DerivedEntitlement(
        definition=definition,
        subscription_id=sub.id,
        current_period=(sub.current_period_start, sub.current_period_end),
        limit=link.max_usage if metered else None,
    )


def _months(count: int) -> Interval:
    interval = parse_interval(f"P{count}M")
    assert interval is not None  # a plan's interval is a positive number of months
    return interval
