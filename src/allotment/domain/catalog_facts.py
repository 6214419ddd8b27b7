"""Facts about an environment's catalog, journaled beside customer facts.

A catalog change is journaled as `CatalogUpdated`: the features, credit models and plans it
upserts, as domain values, never as the document an edge received. Its tag is stable and its
shape carries an explicit `version`: a change that old readers could misread (a renamed or
retyped field, here or in the catalog values it holds) needs a new version and a decoder that
still reads the old one (docs/internals.md, "Catalog changes in the journal").
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal

import msgspec

from allotment.domain.catalog import Catalog, CreditAllocation, CreditModel, Feature, Plan
from allotment.domain.catalog_rules import CatalogInvalid, check_update
from allotment.domain.meters import MeterDefined, MeterDeleted
from allotment.domain.om_notify_rules import NotificationRuleSet

__all__ = (
    "CATALOG_UPDATED_VERSION",
    "CatalogFact",
    "CatalogUpdated",
    "FeatureAutoCreated",
    "apply_update",
    "evolve_catalog",
    "unrecorded_part",
    "update_catalog",
)

CATALOG_UPDATED_VERSION: Final = 1


class CatalogUpdated(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="catalog_updated"):
    """At `at`, these entities replaced those with the same key, or were added (PLN-10)."""

    # Always written (no omit_defaults), and a reader refuses a version it does not know.
    version: Literal[1] = CATALOG_UPDATED_VERSION
    at: datetime
    features: tuple[Feature, ...] = ()
    credit_models: tuple[CreditModel, ...] = ()
    plans: tuple[Plan, ...] = ()


class FeatureAutoCreated(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="feature_auto_created"
):
    at: datetime
    feature: Feature


CatalogFact = (
    CatalogUpdated | FeatureAutoCreated | MeterDefined | MeterDeleted | NotificationRuleSet
)


def update_catalog(
    current: Catalog, update: CatalogUpdated, plans_in_use: frozenset[uuid.UUID]
) -> tuple[Catalog, CatalogUpdated]:
    """Check `update` against `current` (PLN-10, PLN-12) and apply it.

    Returns:
        The new catalog, and the fact to journal: `update` with each plan's `created_at` (and
        its allocations') kept from the plan it replaces.

    Raises:
        CatalogInvalid: with every problem found; nothing is applied.
    """
    problems = check_update(
        current, update.features, update.credit_models, update.plans, plans_in_use
    )
    if problems:
        raise CatalogInvalid(problems)
    fact = msgspec.structs.replace(
        update, plans=tuple(_keeping_created_at(p, current.plans.get(p.id)) for p in update.plans)
    )
    return apply_update(current, fact), fact


def apply_update(catalog: Catalog, fact: CatalogUpdated) -> Catalog:
    """Upsert the fact's entities by key. Plans keep their declaration order (PLN-3 sorts).

    A plan or allocation that already exists keeps its `created_at`: it is when the entity
    first appeared, whatever later changes say. A fact from `update_catalog` already holds it;
    facts converted from older journal records carry their own time instead.
    """
    features = dict(catalog.features)
    for feature in fact.features:
        features[feature.key] = _keeping_openmeter(feature, features.get(feature.key))
    models = dict(catalog.credit_models)
    for model in fact.credit_models:
        models[model.key] = model
    plans = dict(catalog.plans)
    for plan in fact.plans:
        plans[plan.id] = _keeping_created_at(plan, plans.get(plan.id))
    return msgspec.structs.replace(catalog, features=features, credit_models=models, plans=plans)


def _keeping_openmeter(feature: Feature, previous: Feature | None) -> Feature:
    """OM-33: a feature replaced through the admin API or the catalog file (no `created_at`
    of its own) keeps what only OpenMeter sets: its creation time, metadata and archiving,
    and its meter unless the change names one. A feature created through OpenMeter (with a
    `created_at`) is new, whatever was archived under its key before."""
    if previous is None or feature.created_at is not None:
        return feature
    return msgspec.structs.replace(
        feature,
        created_at=previous.created_at,
        archived_at=previous.archived_at,
        metadata=previous.metadata,
        meter_slug=feature.meter_slug or previous.meter_slug,
        meter_group_by_filters=(
            feature.meter_group_by_filters
            if feature.meter_slug is not None
            else previous.meter_group_by_filters
        ),
    )


def _keeping_created_at(plan: Plan, previous: Plan | None) -> Plan:
    if previous is None:
        return plan
    before = {a.id: a.created_at for a in previous.credit_allocations}
    allocations = tuple(_created(a, before.get(a.id)) for a in plan.credit_allocations)
    if plan.created_at == previous.created_at and allocations == plan.credit_allocations:
        return plan
    return msgspec.structs.replace(
        plan, created_at=previous.created_at, credit_allocations=allocations
    )


def _created(allocation: CreditAllocation, created_at: datetime | None) -> CreditAllocation:
    if created_at is None or created_at == allocation.created_at:
        return allocation
    return msgspec.structs.replace(allocation, created_at=created_at)


def evolve_catalog(catalog: Catalog, fact: CatalogFact) -> Catalog:
    """Replay one catalog fact. It was checked when it was accepted."""
    if isinstance(fact, FeatureAutoCreated):
        return catalog.with_feature(fact.feature)
    if isinstance(fact, MeterDefined):
        return catalog.with_meter(fact.meter)
    if isinstance(fact, NotificationRuleSet):
        return catalog.with_rule(fact.rule)
    if isinstance(fact, MeterDeleted):
        meter = catalog.meters.get(fact.meter_id)
        if meter is None:  # never written: a delete is decided against the meter it names
            return catalog
        return catalog.with_meter(msgspec.structs.replace(meter, deleted_at=fact.at))
    return apply_update(catalog, fact)


def unrecorded_part(recorded: Catalog, seed: Catalog, at: datetime) -> CatalogUpdated | None:
    """The entities of `seed` (the catalog file) that `recorded` (what the environment's
    snapshot and journal hold) lacks: features and credit models by key, plans by id. None
    when there are none.

    What was recorded wins, so a plan keeps the `created_at` it was first recorded with at
    every later start (PLN-3, MNY-C5), and an admin change to a plan the file also declares is
    not undone by a restart.
    """
    features = tuple(f for k, f in seed.features.items() if k not in recorded.features)
    models = tuple(m for k, m in seed.credit_models.items() if k not in recorded.credit_models)
    plans = tuple(p for i, p in seed.plans.items() if i not in recorded.plans)
    if not (features or models or plans):
        return None
    return CatalogUpdated(at=at, features=features, credit_models=models, plans=plans)
