"""The catalog's rules and its upsert, over domain values only (PLN-3, PLN-10, PLN-12)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from allotment.domain.catalog import Catalog, FeatureLink, PriceTier, PricingType
from allotment.domain.catalog_facts import CatalogUpdated, apply_update, update_catalog
from allotment.domain.catalog_rules import CatalogInvalid
from tests.domain.harness import START, catalog_from, demo_catalog


def _plan(key: str = "pro_monthly") -> tuple[Catalog, CatalogUpdated]:
    catalog = demo_catalog()
    plan = catalog.plan_by_key(key)
    assert plan is not None
    later = START + timedelta(days=1)
    edited = msgspec.structs.replace(plan, name="Renamed", created_at=later, modified_at=later)
    return catalog, CatalogUpdated(at=later, plans=(edited,))


def test_an_upsert_keeps_when_a_plan_first_appeared() -> None:
    """PLN-3 orders plans by createdAt, so an edit must not move a plan: the fact to journal
    and the catalog both keep the old createdAt (and the allocations'), with a new modifiedAt."""
    catalog, update = _plan()
    new, fact = update_catalog(catalog, update, frozenset())
    plan = new.plan_by_key("pro_monthly")
    assert plan is not None and plan.name == "Renamed"
    assert plan.created_at == START and plan.modified_at == update.at
    assert fact.plans == (plan,)
    assert [a.created_at for a in plan.credit_allocations] == [START] * len(plan.credit_allocations)
    assert apply_update(catalog, update) == new  # replay of an unstamped fact: the same
    assert list(new.plans) == list(catalog.plans)  # declaration order is kept


def test_a_plan_in_use_keeps_its_priced_fields() -> None:
    """PLN-12, with the path in domain names (the edge renames them)."""
    catalog, update = _plan()
    repriced = msgspec.structs.replace(update.plans[0], price_amount=Decimal(1))
    with pytest.raises(CatalogInvalid) as raised:
        update_catalog(
            catalog, msgspec.structs.replace(update, plans=(repriced,)), frozenset({repriced.id})
        )
    assert [p.path for p in raised.value.problems] == [
        (("plans", "pro_monthly"), ("price_amount", None))
    ]


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ((Decimal(10), None, Decimal(20)), "only the last tier may be unbounded"),
        ((Decimal(10), Decimal(20)), "the last tier must be unbounded"),
        ((Decimal(10), Decimal(10), None), "tiers must be strictly increasing"),
        ((Decimal(0), None), "tiers must be strictly increasing"),
    ],
)
def test_tier_bounds_increase_and_only_the_last_is_unbounded(
    bounds: tuple[Decimal | None, ...], message: str
) -> None:
    """PLN-8, PLN-10: an unbounded tier is `up_to=None`; no wire spelling is involved."""
    catalog = catalog_from({"features": [{"key": "gb"}]})
    base = catalog_from(
        {"plans": [{"key": "p", "name": "P", "priceAmount": 0, "currency": "USD",
                    "intervalMonths": 1, "billingTiming": "IN_ARREARS"}]}, catalog,
    )  # fmt: skip
    plan = base.plan_by_key("p")
    assert plan is not None
    tiers = tuple(PriceTier(up_to=b, price_per_unit=Decimal(1)) for b in bounds)
    link = FeatureLink(feature_key="gb", pricing_type=PricingType.GRADUATED, tiers=tiers)
    update = CatalogUpdated(at=START, plans=(msgspec.structs.replace(plan, features=(link,)),))
    with pytest.raises(CatalogInvalid) as raised:
        update_catalog(base, update, frozenset())
    problem = next(p for p in raised.value.problems if p.message == message)
    assert problem.path[:2] == (("plans", "p"), ("features", "gb"))
    assert problem.path[-1] == ("up_to", None)
