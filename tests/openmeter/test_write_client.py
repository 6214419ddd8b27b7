"""The official `openmeter` client, unchanged, against a real allotment server: every write
operation of issue 16 (ingest, meters, features, customers), problem+json errors naming the
field, and CloudEvents counting toward Tanso entitlements (docs/openmeter.md, OM-*).

One server for the module; each test uses names of its own."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest

from openmeter import Client
from openmeter import models as m
from tests.openmeter.support import A, C, refused
from tests.openmeter.support import metered_customer as _metered_customer
from tests.openmeter.support import used as _used
from tests.reliability.server import KEY, Server


def _event(event_id: str, subject: str, type_: str = "api", **data: Any) -> m.Event:
    return m.Event(id=event_id, source="tests", specversion="1.0", type=type_, subject=subject,
                   data=data or None)  # fmt: skip


# -- meters ------------------------------------------------------------------------------------


def test_meters_round_trip_through_the_client(om: Client) -> None:
    """OM-10..OM-15: create, get by slug and id, list, update (groupBy grows), delete."""
    created = om.meters.create(m.MeterCreate(slug="rt_tokens", aggregation="SUM",
                                             event_type="rt", value_property="$.usage.tokens",
                                             group_by={"model": "$.model"}))  # fmt: skip
    assert (created.slug, created.name, created.aggregation) == ("rt_tokens", "rt_tokens", "SUM")
    assert om.meters.get("rt_tokens").id == created.id == om.meters.get(created.id).id
    assert created.id in [meter.id for meter in om.meters.list()]
    updated = om.meters.update("rt_tokens", m.MeterUpdate(name="Tokens",
                               group_by={"model": "$.model", "region": "$.region"}))  # fmt: skip
    assert (updated.name, updated.group_by) == (
        "Tokens",
        {"model": "$.model", "region": "$.region"},
    )
    assert updated.value_property == "$.usage.tokens"  # immutable fields stay (OM-13)
    om.meters.delete("rt_tokens")
    gone = om.meters.get(created.id)  # OM-14: the id still answers, deleted
    assert gone.deleted_at is not None
    assert refused(lambda: om.meters.get("rt_tokens")).status == 404
    assert created.id not in [meter.id for meter in om.meters.list()]
    assert created.id in [meter.id for meter in om.meters.list(include_deleted=True)]
    again = om.meters.create(m.MeterCreate(slug="rt_tokens", aggregation="COUNT", event_type="rt"))
    assert again.id != created.id  # the slug of a deleted meter may be used again


def test_meters_list_pages_and_orders(om: Client) -> None:
    """OM-3: listMeters is a bare array, paged by page/pageSize and sorted by orderBy."""
    for slug in ("pg_c", "pg_a", "pg_b"):
        om.meters.create(m.MeterCreate(slug=slug, aggregation="COUNT", event_type="pg"))
    ours = [
        x.slug for x in om.meters.list(order_by="key", page_size=1000) if x.slug.startswith("pg_")
    ]
    assert ours == ["pg_a", "pg_b", "pg_c"]
    everything = [x.slug for x in om.meters.list(order_by="key", order="DESC", page_size=1000)]
    first_two = [x.slug for x in om.meters.list(order_by="key", order="DESC", page=1, page_size=2)]
    second = [x.slug for x in om.meters.list(order_by="key", order="DESC", page=2, page_size=2)]
    assert first_two + second == everything[:4]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"slug": "bad_path", "aggregation": "SUM", "eventType": "x", "valueProperty": "$.a[0]"}, "valueProperty", 400),
        ({"slug": "bad_path2", "aggregation": "SUM", "eventType": "x", "valueProperty": "$..a"}, "valueProperty", 400),
        ({"slug": "bad_group", "aggregation": "COUNT", "eventType": "x", "groupBy": {"m": "model"}}, "groupBy.m", 400),
        ({"slug": "no_value", "aggregation": "MAX", "eventType": "x"}, "valueProperty", 400),
        ({"slug": "Bad-Slug", "aggregation": "COUNT", "eventType": "x"}, "slug", 400),
        ({"slug": "bad_agg", "aggregation": "MEDIAN", "eventType": "x"}, "aggregation", 400),
        ({"slug": "no_type", "aggregation": "COUNT"}, "eventType", 400),
    ],
)  # fmt: skip
def test_a_bad_meter_is_refused_naming_the_field(
    om: Client, body: dict[str, Any], field: str, status: int
) -> None:
    """OM-10, OM-2: a JSONPath outside `$.a.b`, a bad slug or a missing field: 400 naming it,
    and no meter."""
    problem = refused(lambda: om.meters.create(m.MeterCreate(body)))
    assert (problem.status, problem.fields) == (status, [field])
    assert refused(lambda: om.meters.get(body["slug"])).status == 404


def test_meter_conflicts_and_immutable_dimensions(om: Client) -> None:
    """OM-10: a live slug is unique (409); OM-13: a groupBy dimension keeps its path."""
    om.meters.create(m.MeterCreate(slug="dup_m", aggregation="MAX", event_type="d",
                                   value_property="$.v", group_by={"k": "$.k"}))  # fmt: skip
    assert refused(lambda: om.meters.create(m.MeterCreate(slug="dup_m", aggregation="COUNT",
                                                          event_type="d"))).status == 409  # fmt: skip
    problem = refused(lambda: om.meters.update("dup_m", m.MeterUpdate(name="x", group_by={})))
    assert (problem.status, problem.fields) == (400, ["groupBy.k"])


# -- features ------------------------------------------------------------------------------------


def test_features_are_the_catalog_s(om: Client, http: httpx.Client) -> None:
    """OM-30..OM-33: a feature made through OpenMeter is a catalog feature (admin GET shows
    it with its meter), Tanso's features are listed here, and archiving keeps it."""
    om.meters.create(m.MeterCreate(slug="ft_meter", aggregation="SUM", event_type="ft",
                                   value_property="$.n", group_by={"tier": "$.tier"}))  # fmt: skip
    made = om.features.create(m.FeatureCreateInputs(key="ft_feature", name="F", meter_slug="ft_meter", meter_group_by_filters={"tier": "gold"}))  # fmt: skip
    assert (made.meter_slug, made.meter_group_by_filters) == ("ft_meter", {"tier": "gold"})
    assert om.features.get(made.id).key == om.features.get("ft_feature").key == "ft_feature"
    catalog = http.get(f"{A}/catalog").json()["data"]
    doc = next(f for f in catalog["features"] if f["key"] == "ft_feature")
    assert (doc["id"], doc["meterSlug"], doc["meterGroupByFilters"]) == (
        made.id,
        "ft_meter",
        {"tier": "gold"},
    )
    listed = _keys(om.features.list())  # the client leaves this union result as JSON
    assert {"api_calls", "ft_feature"} <= set(listed)  # one vocabulary
    assert _keys(om.features.list(meter_slug=["ft_meter"])) == ["ft_feature"]
    page: Any = om.features.list(page=1, page_size=2)
    assert (page["page"], page["pageSize"], len(page["items"])) == (1, 2, 2)
    assert page["totalCount"] == len(listed)
    assert _keys(om.features.list(offset=1, limit=2)) == listed[1:3]
    # The admin API puts the catalog back as it got it: the feature keeps its meter (OM-33).
    assert http.put(f"{A}/catalog", json=catalog).status_code == 200
    assert om.features.get("ft_feature").meter_slug == "ft_meter"
    om.features.delete("ft_feature")
    assert om.features.get("ft_feature").archived_at is not None
    assert "ft_feature" not in _keys(om.features.list())
    assert "ft_feature" in _keys(om.features.list(include_archived=True))
    om.meters.delete("ft_meter")  # OM-14: an archived feature does not hold its meter


def _keys(features: Any) -> list[str]:
    return [f["key"] for f in features]


def test_bad_features_are_refused(om: Client) -> None:
    """OM-31: a live key is unique; the meter must exist and aggregate SUM, COUNT, UNIQUE_COUNT
    or LATEST; filters name its dimensions."""
    om.meters.create(m.MeterCreate(slug="bf_meter", aggregation="COUNT", event_type="bf",
                                   group_by={"k": "$.k"}))  # fmt: skip
    assert (
        refused(lambda: om.features.create(m.FeatureCreateInputs(key="api_calls", name="x"))).status
        == 409
    )
    problem = refused(
        lambda: om.features.create(m.FeatureCreateInputs(key="bf1", name="x", meter_slug="nope"))
    )
    assert (problem.status, problem.fields) == (400, ["meterSlug"])
    problem = refused(
        lambda: om.features.create(
            m.FeatureCreateInputs(
                key="bf2", name="x", meter_slug="bf_meter", meter_group_by_filters={"z": "1"}
            )
        )
    )
    assert (problem.status, problem.fields) == (400, ["meterGroupByFilters.z"])
    assert refused(lambda: om.features.get("bf1")).status == 404
    # The document: only SUM, COUNT, UNIQUE_COUNT and LATEST meters back a feature.
    om.meters.create(m.MeterCreate(slug="bf_peak", aggregation="MAX", event_type="bf",
                                   value_property="$.v"))  # fmt: skip
    problem = refused(
        lambda: om.features.create(m.FeatureCreateInputs(key="bf4", name="x", meter_slug="bf_peak"))
    )
    assert (problem.status, problem.fields) == (400, ["meterSlug"])
    assert "MAX" in problem.body["detail"]
    assert refused(lambda: om.features.get("bf4")).status == 404
    om.features.create(m.FeatureCreateInputs(key="bf3", name="x", meter_slug="bf_meter"))
    assert refused(lambda: om.meters.delete("bf_meter")).status == 409  # OM-14: in use
    om.features.delete("bf3")
    om.meters.delete("bf_meter")  # archived features do not hold it


# -- customers -----------------------------------------------------------------------------------


def test_customers_through_both_apis(om: Client, http: httpx.Client) -> None:
    """OM-20..OM-25: an OpenMeter customer is the Tanso customer with that reference id, and
    a Tanso customer is listed by OpenMeter."""
    made = om.customers.create(m.CustomerCreate(name="Acme", key="cu_acme", primary_email="a@acme.example", usage_attribution=m.CustomerUsageAttribution(subject_keys=["cu-acme"])))  # fmt: skip
    tanso_view = http.get(f"{C}/customers/cu_acme").json()["data"]
    assert (tanso_view["email"], tanso_view["subscriptions"]) == ("a@acme.example", [])
    assert om.customers.get(made.id).key == om.customers.get("cu_acme").key == "cu_acme"
    body = {
        "customerReferenceId": "cu_tanso",
        "firstName": "Ada",
        "lastName": "L",
        "email": "ada@x.example",
    }
    assert http.post(f"{C}/customers", json=body).status_code == 201
    seen = om.customers.get("cu_tanso")
    assert (
        seen.name,
        seen.primary_email,
        seen.usage_attribution and seen.usage_attribution.subject_keys,
    ) == (
        "Ada L",
        "ada@x.example",
        [],
    )
    assert (
        refused(lambda: om.customers.create(m.CustomerCreate(name="x", key="cu_tanso"))).status
        == 409
    )
    updated = om.customers.update("cu_acme", m.CustomerReplaceUpdate(name="Acme 2", usage_attribution=m.CustomerUsageAttribution(subject_keys=["cu-acme", "cu-acme-eu"])))  # fmt: skip
    assert (updated.name, updated.usage_attribution and updated.usage_attribution.subject_keys) == (
        "Acme 2",
        ["cu-acme", "cu-acme-eu"],
    )
    taken = refused(lambda: om.customers.create(m.CustomerCreate(name="y", key="cu_other", usage_attribution=m.CustomerUsageAttribution(subject_keys=["cu-acme-eu"]))))  # fmt: skip
    assert taken.status == 409 and "cu-acme-eu" in taken.body["detail"]
    assert refused(lambda: om.customers.get("cu_other")).status == 404  # nothing written
    page = om.customers.list(subject="cu-acme-eu")
    assert [c.key for c in page.items_property] == ["cu_acme"] and page.total_count == 1
    om.customers.delete("cu_acme")
    assert om.customers.get("cu_acme").deleted_at is not None
    assert "cu_acme" not in {c.key for c in om.customers.list(page_size=1000).items_property}
    assert "cu_acme" in {
        c.key for c in om.customers.list(include_deleted=True, page_size=1000).items_property
    }
    # OM-24: the subject keys are free again
    om.customers.create(m.CustomerCreate(name="z", key="cu_next", usage_attribution=m.CustomerUsageAttribution(subject_keys=["cu-acme"])))  # fmt: skip


def test_customers_list_pages(om: Client) -> None:
    """OM-3: page/pageSize/orderBy on listCustomers, `totalCount` the whole match."""
    for i in range(3):
        om.customers.create(m.CustomerCreate(name=f"pgc{i}", key=f"pgc_{i}"))
    everything = om.customers.list(name="pgc", order_by="name")
    assert [c.name for c in everything.items_property] == ["pgc0", "pgc1", "pgc2"]
    second = om.customers.list(name="pgc", order_by="name", page=2, page_size=2)
    assert ([c.name for c in second.items_property], second.total_count) == (["pgc2"], 3)
    assert refused(lambda: om.customers.list(order_by="nope")).fields == ["orderBy"]


# -- events ----------------------------------------------------------------------------------------


def test_events_in_three_content_types_count_toward_entitlements(
    om: Client, http: httpx.Client
) -> None:
    """OM-1, OM-5, OM-8, OM-30: one event, a batch, and application/json in both shapes, all
    counted toward the features of their meters; the tokens feature counts only model `big`."""
    _metered_customer(om, http, "ev")
    s = "ev-subject"
    om.events.ingest_event(_event("e1", s, "ev.api"))
    om.events.ingest_events([_event("e2", s, "ev.api"), _event("e3", s, "ev.llm", tokens=100, model="big"),
                             _event("e4", s, "ev.llm", tokens="7.5", model="big"),
                             _event("e5", s, "ev.llm", tokens=50, model="small")])  # fmt: skip
    om.events.ingest_events_json(_event("e6", s, "ev.api"))
    om.events.ingest_events_json([_event("e7", s, "ev.api"), _event("e8", s, "ev.api")])
    assert _used(http, "ev", "ev_calls") == 5
    assert _used(http, "ev", "ev_tokens") == 107.5


def test_duplicates_count_once_and_tanso_events_add_to_the_same_usage(
    om: Client, http: httpx.Client
) -> None:
    """OM-6: (source, id) counts once; another source with the id is another event. OM-30:
    a Tanso event of the feature adds to the usage CloudEvents made."""
    _metered_customer(om, http, "dd")
    om.events.ingest_events(
        [_event("d1", "dd-subject", "dd.api"), _event("d1", "dd-subject", "dd.api")]
    )
    om.events.ingest_event(_event("d1", "dd-subject", "dd.api"))
    other = m.Event(
        id="d1", source="elsewhere", specversion="1.0", type="dd.api", subject="dd-subject"
    )
    om.events.ingest_event(other)
    assert _used(http, "dd", "dd_calls") == 2
    body = {"eventName": "call", "featureKey": "dd_calls", "customerReferenceId": "dd",
            "eventIdempotencyKey": "d1", "usageUnits": 3}  # fmt: skip
    assert http.post(f"{C}/events", json=body).status_code == 201  # not a CloudEvent key
    assert _used(http, "dd", "dd_calls") == 5


def test_an_unknown_subject_is_kept_and_counts_for_nobody(om: Client, http: httpx.Client) -> None:
    """OM-9: the event is accepted (204) and kept; a customer claiming the subject later does
    not inherit it as entitlement usage, and its (source, id) stays taken."""
    _metered_customer(om, http, "un")
    om.events.ingest_event(_event("u1", "later-subject", "un.api"))
    om.customers.update("un", m.CustomerReplaceUpdate(name="un", usage_attribution=m.CustomerUsageAttribution(subject_keys=["un-subject", "later-subject"])))  # fmt: skip
    om.events.ingest_event(_event("u1", "later-subject", "un.api"))  # a duplicate: dropped
    om.events.ingest_event(_event("u2", "later-subject", "un.api"))
    assert _used(http, "un", "un_calls") == 1


BAD_EVENTS = {
    "missing id": ({"source": "s", "specversion": "1.0", "type": "bad.api", "subject": "bad-subject"}, "[1].id"),
    "bad specversion": ({"id": "x", "source": "s", "specversion": "0.3", "type": "bad.api", "subject": "bad-subject"}, "[1].specversion"),
    "data not an object": ({"id": "x", "source": "s", "specversion": "1.0", "type": "bad.api", "subject": "bad-subject", "data": [1, 2]}, "[1].data"),
    "data a string": ({"id": "x", "source": "s", "specversion": "1.0", "type": "bad.api", "subject": "bad-subject", "data": "{}"}, "[1].data"),
    "time not RFC 3339": ({"id": "x", "source": "s", "specversion": "1.0", "type": "bad.api", "subject": "bad-subject", "time": "yesterday"}, "[1].time"),
    "time without offset": ({"id": "x", "source": "s", "specversion": "1.0", "type": "bad.api", "subject": "bad-subject", "time": "2025-01-01T00:00:00"}, "[1].time"),
    "empty subject": ({"id": "x", "source": "s", "specversion": "1.0", "type": "bad.api", "subject": ""}, "[1].subject"),
}  # fmt: skip


@pytest.fixture(scope="module")
def bad_setup(om: Client, http: httpx.Client) -> None:
    _metered_customer(om, http, "bad")


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_a_bad_cloudevent_refuses_the_batch_and_writes_nothing(
    om: Client, http: httpx.Client, bad_setup: None, case: str
) -> None:
    """OM-2: a batch with one bad event is refused whole with a 400 naming the event and
    field: the good event before it is not counted, and sent again later it is new."""
    bad, field = BAD_EVENTS[case]
    good = {"id": f"good-{case}", "source": "s", "specversion": "1.0", "type": "bad.api",
            "subject": "bad-subject"}  # fmt: skip
    before = _used(http, "bad", "bad_calls")
    problem = refused(lambda: om.events.ingest_events(io.BytesIO(json.dumps([good, bad]).encode())))
    assert (problem.status, problem.fields) == (400, [field])
    assert _used(http, "bad", "bad_calls") == before
    om.events.ingest_events([m.Event(good)])
    assert _used(http, "bad", "bad_calls") == before + 1


def test_a_batch_over_1000_events_is_refused(
    om: Client, http: httpx.Client, bad_setup: None
) -> None:
    """OM-5: 1,001 events: 400 naming the body, nothing counted; 1,000 are one request."""
    events = [_event(f"big-{i}", "bad-subject", "bad.api") for i in range(1001)]
    before = _used(http, "bad", "bad_calls")
    problem = refused(lambda: om.events.ingest_events(events))
    assert (problem.status, problem.fields) == (400, ["body"])
    assert _used(http, "bad", "bad_calls") == before
    om.events.ingest_events(events[:1000])
    assert _used(http, "bad", "bad_calls") == before + 1000


def test_single_event_errors_name_the_field_and_content_types_are_checked(
    server: Server, om: Client
) -> None:
    """OM-1, OM-2: a single event's field is named without an index; another content type
    is 415, as problem+json."""
    problem = refused(
        lambda: om.events.ingest_event(
            m.Event({"id": "x", "source": "s", "specversion": "1.0", "type": "t"})
        )
    )
    assert problem.fields == ["subject"]
    response = httpx.post(
        f"{server.url}/api/v1/events",
        content=b"{}",
        headers={"Authorization": f"Bearer {KEY}", "content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


def test_a_bad_key_is_a_problem_too(server: Server) -> None:
    """OM-2: authentication failures on OpenMeter paths are problem+json (401), and nothing
    is written."""
    stranger = Client(endpoint=server.url, token="sk_test_" + "x" * 32)
    assert refused(stranger.meters.list).status == 401
    event = m.Event(id="k1", source="s", specversion="1.0", type="t", subject="x")
    assert refused(lambda: stranger.events.ingest_event(event)).status == 401
