"""The official `openmeter` client, unchanged, on what the document says of customers and
lists (OM-20, OM-3): who may be created as a customer, listCustomers' filters (`subject` a
case-insensitive partial match, `planKey` the plan of a live subscription), and
listFeatures' default `limit`. test_write_client.py has the rest of these operations.

One server for the module; each test uses names of its own."""

from __future__ import annotations

from typing import Any

import httpx

from openmeter import Client
from openmeter import models as m
from tests.openmeter.support import metered_customer, refused


def test_a_customer_needs_a_key_or_a_subject_key(om: Client) -> None:
    """OM-20: "Either key or usageAttribution.subjectKeys must be provided": 400 naming `key`
    and nothing written, on create and on an update that would leave neither."""
    before = om.customers.list(name="cu_anon", include_deleted=True).total_count
    problem = refused(lambda: om.customers.create(m.CustomerCreate(name="cu_anon")))
    assert (problem.status, problem.fields) == (400, ["key"])
    assert om.customers.list(name="cu_anon", include_deleted=True).total_count == before
    subjects = m.CustomerUsageAttribution(subject_keys=["cu-anon"])
    made = om.customers.create(m.CustomerCreate(name="cu_anon", usage_attribution=subjects))
    assert made.key is None
    none = m.CustomerUsageAttribution(subject_keys=[])
    problem = refused(lambda: om.customers.update(made.id, m.CustomerReplaceUpdate(name="cu_anon", usage_attribution=none)))  # fmt: skip
    assert (problem.status, problem.fields) == (400, ["key"])
    kept = om.customers.get(made.id).usage_attribution
    assert kept is not None and kept.subject_keys == ["cu-anon"]


def test_list_filters_by_subject_and_plan(om: Client, http: httpx.Client) -> None:
    """OM-3: `subject` matches part of any subject key, in any case; `planKey` keeps the
    customers with a live subscription to that plan; both together must hold."""
    metered_customer(om, http, "lcp")  # customer lcp, subject lcp-subject, on plan lcp_plan
    others = m.CustomerUsageAttribution(subject_keys=["LCP-other"])
    om.customers.create(m.CustomerCreate(name="lcq", key="lcq", usage_attribution=others))

    def keys(
        subject: str | None = None, name: str | None = None, plan_key: str | None = None
    ) -> list[str | None]:
        page = om.customers.list(order_by="name", subject=subject, name=name, plan_key=plan_key)
        return [c.key for c in page.items_property]

    assert keys(subject="lcp-") == ["lcp", "lcq"]
    assert keys(subject="SUBJECT", name="lcp") == ["lcp"]
    assert keys(plan_key="lcp_plan") == ["lcp"]
    assert keys(plan_key="lcp_plan", subject="other") == []
    assert keys(plan_key="no_such_plan") == []


def test_features_list_100_by_default(om: Client) -> None:
    """OM-3: listFeatures without `page` answers an array of at most `limit` features, 100 by
    default (the document's LimitOffset); the page object counts them all."""
    total = _feature_page(om)["totalCount"]
    for n in range(max(0, 101 - total)):
        om.features.create(m.FeatureCreateInputs(key=f"lf_{n}", name=f"lf {n}"))
    total = _feature_page(om)["totalCount"]
    assert total > 100
    everything: Any = om.features.list(limit=1000)
    default: Any = om.features.list()
    assert (len(everything), len(default)) == (total, 100)
    assert [f["key"] for f in default] == [f["key"] for f in everything[:100]]
    tail: Any = om.features.list(offset=100)
    assert [f["key"] for f in tail] == [f["key"] for f in everything[100:200]]


def _feature_page(om: Client) -> Any:
    return om.features.list(page=1, page_size=1)  # the client leaves this union as JSON
