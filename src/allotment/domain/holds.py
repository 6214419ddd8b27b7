"""The cumulative decision of several hold items (RSV-4): pure, and shared by reserve and the
multi-feature pre-flight, which may call it without reserving anything."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from allotment.domain.catalog import Catalog, FeatureLink, Plan
from allotment.domain.commands import HoldItem
from allotment.domain.entitlement import Pending, evaluate_governed, governing_subscription
from allotment.domain.money import ZERO, round_credits
from allotment.domain.reservation_replies import ItemDecision
from allotment.domain.state import CustomerState, Subscription

__all__ = ("Governing", "HoldItem", "ItemDecision", "evaluate_items", "governing_link")


Governing = tuple[Subscription, Plan, FeatureLink] | None  # what `governing_subscription` finds


def evaluate_items(
    state: CustomerState,
    catalog: Catalog,
    items: Sequence[HoldItem],
    governing: Sequence[Governing] | None = None,
) -> list[ItemDecision]:
    """Decide each item as a simulation of its units (ENT-10..ENT-17, SIM-2..SIM-5), counting
    what the customer's open reservations hold and what the items before it would hold: the
    same feature twice, or two features drawing on one credit pool, add up (RSV-4, RSV-7).

    Pure: nothing is held. The request is allowed, all or none, when every item is
    (`all(d.decision.allowed for d in result)`, RSV-5). Each item's `credits` and
    `denomination` are what it would hold of a pool (None when it is not credit-backed).

    Args:
        state: the customer, with every transition due by now already applied.
        catalog: the environment's catalog.
        items: the features and units asked for, in request order.
        governing: each item's `governing_subscription`, when the caller has found them
            already (a reserve does, for its own checks): found once, not once per use.
    """
    if governing is None:
        governing = [governing_subscription(state, catalog, i.feature_key) for i in items]
    # One item (the common reserve) has no earlier items to add up: no running totals.
    pending = Pending() if len(items) > 1 else None
    decided: list[ItemDecision] = []
    for item, found in zip(items, governing, strict=True):
        decision = evaluate_governed(state, catalog, item.feature_key, item.units, pending, found)
        credits, denomination = _link_credits(catalog, item, found[2] if found else None)
        decided.append(
            ItemDecision(
                feature_key=item.feature_key,
                units=item.units,
                decision=decision,
                credits=credits,
                denomination=denomination,
            )
        )
        if pending is None:
            continue
        pending.units[item.feature_key] = pending.units.get(item.feature_key, ZERO) + item.units
        if denomination is not None and credits is not None:
            pending.credits[denomination] = pending.credits.get(denomination, ZERO) + credits
    return decided


def _link_credits(
    catalog: Catalog, item: HoldItem, link: FeatureLink | None
) -> tuple[Decimal | None, str | None]:
    """The credits `item` holds and of which pool (RSV-6), through the governing plan's
    credits-per-unit; (None, None) when the feature is not credit-backed."""
    if link is None or link.credit_model_key is None or not link.metered:
        return None, None
    model = catalog.credit_models.get(link.credit_model_key)
    if model is None:
        return None, None
    return round_credits(item.units * link.credits_per_unit), model.denomination


def governing_link(state: CustomerState, catalog: Catalog, feature_key: str) -> FeatureLink | None:
    """The plan link that governs `feature_key` now (ENT-18), if any."""
    governing = governing_subscription(state, catalog, feature_key)
    return governing[2] if governing is not None else None
