"""The rules a catalog change must keep (PLN-10, PLN-12), over the domain's own values.

A change names features, credit models and plans by key; `check_update` returns every problem
it finds, each with the path of the offending field in domain names (`plans[pro].features
[api_calls].price_per_unit`). An edge reports that path in its own words; the rules do not
know any wire format.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from allotment.domain.catalog import (
    Catalog,
    CreditModel,
    Feature,
    FeatureLink,
    Plan,
    PriceTier,
    PricingType,
    RolloverPolicy,
)
from allotment.domain.currencies import is_iso_currency

__all__ = ("CatalogInvalid", "CatalogProblem", "Step", "check_update")

_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")

# One step of a path: a field, and which element of it when the field is a collection (a key
# for features, credit models, plans and links; an index for tiers).
Step = tuple[str, str | int | None]


class CatalogProblem(msgspec.Struct, frozen=True):
    path: tuple[Step, ...]
    message: str


class CatalogInvalid(ValueError):
    """A catalog change breaks PLN-10 or PLN-12. `problems` names each offending field.

    Nothing is applied: fix the change and submit it again.
    """

    def __init__(self, problems: list[CatalogProblem]) -> None:
        super().__init__("; ".join(f"{_plain(p.path)}: {p.message}" for p in problems))
        self.problems = problems


def _plain(path: tuple[Step, ...]) -> str:
    return ".".join(name if item is None else f"{name}[{item}]" for name, item in path)


class _Problems:
    """Collects problems so a change is reported whole, not one error per attempt."""

    def __init__(self) -> None:
        self.found: list[CatalogProblem] = []

    def add(self, path: tuple[Step, ...], message: str) -> None:
        self.found.append(CatalogProblem(path, message))

    def key(self, section: str, key: str) -> None:
        if _KEY_PATTERN.fullmatch(key) is None:
            self.add(((section, key[:128]), ("key", None)), _KEY_RULE)

    def non_negative(self, path: tuple[Step, ...], value: Decimal | None) -> None:
        if value is not None and (not value.is_finite() or value < 0):
            self.add(path, "must be a finite number >= 0")

    def currency(self, path: tuple[Step, ...], code: str) -> None:
        if not is_iso_currency(code):
            self.add(path, f"'{code}' is not an ISO 4217 code")


_KEY_RULE = "1-128 characters of letters, digits, _ . : -"


def _at(path: tuple[Step, ...], name: str, item: str | int | None = None) -> tuple[Step, ...]:
    return (*path, (name, item))


def check_update(
    current: Catalog,
    features: Iterable[Feature],
    credit_models: Iterable[CreditModel],
    plans: Iterable[Plan],
    plans_in_use: frozenset[uuid.UUID],
) -> list[CatalogProblem]:
    """Every problem of upserting these entities into `current`; empty when the change is valid.

    Links and allocations may name features and credit models of `current` or of the change.
    A plan that a subscription uses (`plans_in_use`) keeps its priced fields (PLN-12).
    """
    problems = _Problems()
    known_features = dict(current.features)
    for feature in features:
        problems.key("features", feature.key)
        problems.non_negative(
            (("features", feature.key), ("cost_per_unit", None)), feature.cost_per_unit
        )
        known_features[feature.key] = feature
    known_models = dict(current.credit_models)
    for model in credit_models:
        _check_model(problems, model)
        known_models[model.key] = model
    seen: set[str] = set()
    for plan in plans:
        where: tuple[Step, ...] = (("plans", plan.key),)
        if plan.key in seen:
            problems.add(where, "plan key appears twice in the change")
        seen.add(plan.key)
        _check_plan(problems, plan, known_features, known_models)
        previous = current.plans.get(plan.id)
        if previous is not None and previous.id in plans_in_use:
            _check_priced_fields_unchanged(problems, where, previous, plan)
    return problems.found


def _check_model(problems: _Problems, model: CreditModel) -> None:
    where: tuple[Step, ...] = (("credit_models", model.key),)
    problems.key("credit_models", model.key)
    if not model.denomination:
        problems.add(_at(where, "denomination"), "must not be empty")
    problems.currency(_at(where, "currency"), model.currency)
    if model.rollover_policy is RolloverPolicy.CAPPED:
        if model.rollover_cap is None or model.rollover_cap < 0:
            problems.add(
                _at(where, "rollover_cap"), "required and >= 0 when the rollover policy is CAPPED"
            )
    elif model.rollover_cap is not None:
        problems.add(_at(where, "rollover_cap"), "only allowed when the rollover policy is CAPPED")
    if model.low_balance_threshold is not None and model.low_balance_threshold <= 0:
        problems.add(_at(where, "low_balance_threshold"), "must be null or > 0")  # WHK-E10


def _check_plan(
    problems: _Problems,
    plan: Plan,
    features: dict[str, Feature],
    models: dict[str, CreditModel],
) -> None:
    where: tuple[Step, ...] = (("plans", plan.key),)
    problems.key("plans", plan.key)
    if plan.interval_months < 1:
        problems.add(_at(where, "interval_months"), "must be >= 1")
    problems.non_negative(_at(where, "price_amount"), plan.price_amount)
    problems.currency(_at(where, "currency"), plan.currency)
    linked: set[str] = set()
    for link in plan.features:
        link_at = _at(where, "features", link.feature_key)
        if link.feature_key in linked:
            problems.add(link_at, "feature linked more than once")
        linked.add(link.feature_key)
        _check_link(problems, link_at, link, features, models)
    allocated: set[str] = set()
    for allocation in plan.credit_allocations:
        here = _at(where, "credit_allocations", allocation.credit_model_key)
        if allocation.credit_model_key not in models:
            problems.add(
                _at(here, "credit_model_key"),
                f"unknown credit model '{allocation.credit_model_key}'",
            )
        if allocation.credit_amount <= 0:
            problems.add(_at(here, "credit_amount"), "must be > 0")
        if allocation.grant_expires_months is not None and allocation.grant_expires_months < 1:
            problems.add(_at(here, "grant_expires_months"), "must be null or >= 1")
        if allocation.credit_model_key in allocated:
            problems.add(here, "credit model allocated more than once")
        allocated.add(allocation.credit_model_key)


def _check_link(
    problems: _Problems,
    where: tuple[Step, ...],
    link: FeatureLink,
    features: dict[str, Feature],
    models: dict[str, CreditModel],
) -> None:
    if link.feature_key not in features:
        problems.add(_at(where, "feature_key"), f"unknown feature '{link.feature_key}'")
    problems.non_negative(_at(where, "price_per_unit"), link.price_per_unit)
    if link.max_usage is not None and link.max_usage <= 0:
        problems.add(_at(where, "max_usage"), "must be null or > 0")
    priced = link.price_per_unit is not None
    if link.pricing_type is PricingType.USAGE_BASED and not priced:
        problems.add(_at(where, "price_per_unit"), "required for usage_based pricing")
    if link.pricing_type is PricingType.GRADUATED:
        if priced:
            problems.add(_at(where, "price_per_unit"), "not allowed for graduated pricing")
        if not link.tiers:
            problems.add(_at(where, "tiers"), "required for graduated pricing")
    elif link.tiers:
        problems.add(_at(where, "tiers"), "only allowed for graduated pricing")
    if link.pricing_type is PricingType.INCLUDED and (priced or link.max_usage is not None):
        problems.add(_at(where, "pricing_type"), "included features carry no price and no limit")
    if link.credit_model_key is not None and link.credit_model_key not in models:
        problems.add(
            _at(where, "credit_model_key"), f"unknown credit model '{link.credit_model_key}'"
        )
    if link.credits_per_unit <= 0:
        problems.add(_at(where, "credits_per_unit"), "must be > 0")
    _check_notify_at(problems, where, link)
    _check_tiers(problems, where, link.tiers)


NOTIFY_AT_PERCENT_MAX = 1000  # WHK-E3: usage can run past max_usage (EVT-43), so past 100%


def _check_notify_at(problems: _Problems, where: tuple[Step, ...], link: FeatureLink) -> None:
    """WHK-E3: the percents of max_usage that notify: whole numbers from 1 to 1000, ascending,
    without repeats; only on a link with a max_usage. An empty list notifies at none."""
    percents = link.notify_at_percent
    if percents is None:
        return
    if link.max_usage is None:
        problems.add(
            _at(where, "notify_at_percent"), "only allowed when the link has a usage limit"
        )
    in_range = all(1 <= p <= NOTIFY_AT_PERCENT_MAX for p in percents)
    ascending = all(a < b for a, b in itertools.pairwise(percents))
    if not in_range or not ascending:
        problems.add(
            _at(where, "notify_at_percent"),
            f"must be whole percents from 1 to {NOTIFY_AT_PERCENT_MAX}, ascending, without repeats",
        )


def _check_tiers(
    problems: _Problems, where: tuple[Step, ...], tiers: tuple[PriceTier, ...]
) -> None:
    """PLN-8, PLN-10: bounds strictly increase from above 0, and only the last is unbounded."""
    previous_up_to = Decimal(0)
    for i, tier in enumerate(tiers):
        here = _at(where, "tiers", i)
        last = i == len(tiers) - 1
        problems.non_negative(_at(here, "price_per_unit"), tier.price_per_unit)
        problems.non_negative(_at(here, "flat_fee"), tier.flat_fee)
        if tier.up_to is None:
            if not last:
                problems.add(_at(here, "up_to"), "only the last tier may be unbounded")
            continue
        if last:
            problems.add(_at(here, "up_to"), "the last tier must be unbounded")
        if not tier.up_to.is_finite() or tier.up_to <= previous_up_to:
            problems.add(_at(here, "up_to"), "tiers must be strictly increasing")
        else:
            previous_up_to = tier.up_to


def _check_priced_fields_unchanged(
    problems: _Problems, where: tuple[Step, ...], old: Plan, new: Plan
) -> None:
    """PLN-12: a plan in use keeps its price, timing, interval and feature pricing."""
    for name, before, after in (
        ("price_amount", old.price_amount, new.price_amount),
        ("currency", old.currency, new.currency),
        ("interval_months", old.interval_months, new.interval_months),
        ("billing_timing", old.billing_timing, new.billing_timing),
        ("features", old.features, new.features),
    ):
        if before != after:
            problems.add(
                _at(where, name),
                "cannot change while subscriptions use the plan; "
                "publish a new plan and archive this one",
            )
