"""A Tanso subscription's feature links as read-only OpenMeter entitlements, through the
official client against a real server (OM-150..OM-157): their values follow the Tanso check
as usage arrives through either API, access lists them, and a native entitlement hides one.

One server for the module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openmeter import Client
from openmeter import models as m
from tests.openmeter.subject_ops import entitlement as read
from tests.openmeter.support import A, C, refused, running_server
from tests.reliability.server import Server

LIMIT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("om-views")) as running:
        yield running


def _subscribed(om: Client, http: httpx.Client, name: str) -> str:
    return str(_subscription(om, http, name)["id"])


def _subscription(om: Client, http: httpx.Client, name: str) -> dict[str, Any]:
    """Customer `name` (subject `<name>-subject`) on a plan linking `<name>_calls` (a COUNT
    meter's feature, at most LIMIT a period) and `<name>_seat` (included). Returns the
    subscription."""
    om.meters.create(m.MeterCreate(slug=f"{name}_calls", aggregation="COUNT",
                                   event_type=f"{name}.api"))  # fmt: skip
    om.features.create(m.FeatureCreateInputs(key=f"{name}_calls", name="Calls",
                                             meter_slug=f"{name}_calls"))  # fmt: skip
    om.features.create(m.FeatureCreateInputs(key=f"{name}_seat", name="Seat"))
    links = [
        {"featureKey": f"{name}_calls", "pricingType": "usage_based", "pricePerUnit": 0,
         "maxUsage": LIMIT},
        {"featureKey": f"{name}_seat", "pricingType": "included"},
    ]  # fmt: skip
    plan = {"key": f"{name}_plan", "name": "Plan", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS", "features": links}  # fmt: skip
    assert http.put(f"{A}/catalog", json={"plans": [plan]}).status_code == 200
    attribution = m.CustomerUsageAttribution(subject_keys=[f"{name}-subject"])
    om.customers.create(m.CustomerCreate(name=name, key=name, usage_attribution=attribution))
    plans = http.get(f"{C}/plans").json()["data"]
    plan_id = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == f"{name}_plan")
    response = http.post(
        f"{C}/subscriptions", json={"customerReferenceId": name, "planId": plan_id}
    )
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()["data"]["subscription"]
    return subscription


def _check(http: httpx.Client, customer: str, feature: str) -> dict[str, Any]:
    response = http.get(f"{C}/entitlements/{customer}/{feature}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _view_id(subscription_id: str, feature: str) -> str:
    return f"tanso_{subscription_id.replace('-', '')}_{feature}"


def test_om153_a_view_follows_the_tanso_check_as_usage_arrives_through_either_api(
    om: Client, http: httpx.Client
) -> None:
    """A CloudEvent counted through the feature's meter and a Tanso event of the feature both
    count (OM-30, OM-34); after each, the view's value is the check's answer in OpenMeter
    terms: balance = limit - used, access until it reaches 0."""
    _subscribed(om, http, "vw")
    value = om.customer_entitlement.get_customer_entitlement_value("vw", "vw_calls")
    assert (value.has_access, value.balance, value.usage, value.overage) == (True, 3, 0, 0)
    assert value.total_available_grant_amount == LIMIT
    event = m.Event(id="v1", source="tests", specversion="1.0", type="vw.api",
                    subject="vw-subject")  # fmt: skip
    om.events.ingest_event(event)
    value = om.customer_entitlement.get_customer_entitlement_value("vw", "vw_calls")
    assert (value.has_access, value.balance, value.usage) == (True, 2, 1)
    body = {"eventName": "call", "featureKey": "vw_calls", "customerReferenceId": "vw",
            "eventIdempotencyKey": "t1", "usageUnits": 2}  # fmt: skip
    assert http.post(f"{C}/events", json=body).status_code == 200  # EVT-43: at the limit
    value = om.customer_entitlement.get_customer_entitlement_value("vw", "vw_calls")
    check = _check(http, "vw", "vw_calls")
    assert (value.has_access, check["isAllowed"]) == (False, False)  # the limit is reached
    assert (value.balance, value.usage, value.overage) == (0, 3, 0)
    om.events.ingest_event(m.Event(id="v2", source="tests", specversion="1.0", type="vw.api",
                                   subject="vw-subject"))  # fmt: skip
    value = om.customer_entitlement.get_customer_entitlement_value("vw", "vw_calls")
    assert (value.has_access, value.balance, value.usage, value.overage) == (False, 0, 4, 1)
    assert _check(http, "vw", "vw_calls")["usage"]["used"] == value.usage
    seat = om.customer_entitlement.get_customer_entitlement_value("vw", "vw_seat")
    assert seat.has_access is True and seat.balance is None


def test_om155_access_lists_the_views_and_om151_the_v2_value_takes_their_ids(
    om: Client, http: httpx.Client
) -> None:
    subscription_id = _subscribed(om, http, "ac")
    access = om.customer.get_customer_access("ac")
    assert set(access.entitlements) == {"ac_calls", "ac_seat"}
    assert access.entitlements["ac_calls"].balance == LIMIT
    assert access.entitlements["ac_seat"].has_access is True
    view_id = _view_id(subscription_id, "ac_calls")
    by_id = om.customer_entitlement_v2.get_customer_entitlement_value("ac", view_id)
    assert (by_id.has_access, by_id.balance) == (True, LIMIT)


def test_om153_a_view_refuses_a_past_time(om: Client, http: httpx.Client) -> None:
    _subscribed(om, http, "pt")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    problem = refused(
        lambda: om.customer_entitlement.get_customer_entitlement_value("pt", "pt_calls", time=past)
    )
    assert (problem.status, problem.fields) == (400, ["time"])


def test_om150_om152_listings_and_gets_show_the_views_read_only(
    om: Client, http: httpx.Client
) -> None:
    """The customer's listing (v2), the environment's listings (v1, v2) and the gets by id
    show each link as an entitlement of the document's shape, marked read-only; the
    subscription's period is its usage period."""
    sub = _subscription(om, http, "ls")
    subscription_id = sub["id"]
    calls_id, seat_id = _view_id(subscription_id, "ls_calls"), _view_id(subscription_id, "ls_seat")
    listed = [read(e) for e in om.customer_entitlements_v2.list("ls").items_property]
    assert [(e.id, e.type) for e in listed] == [(calls_id, "metered"), (seat_id, "boolean")]
    calls = listed[0]
    assert calls.metadata["allotment.readOnly"] == "true"
    assert calls.metadata["allotment.subscriptionId"] == subscription_id
    assert (calls.usage_period.interval, calls.is_soft_limit, calls.issue_after_reset) == (
        "MONTH", False, LIMIT,
    )  # fmt: skip
    assert calls.current_usage_period.from_property == dt.datetime.fromisoformat(
        sub["currentPeriodStart"]
    )
    everywhere = om.entitlements.list(subject=["ls-subject"])
    assert {read(e).id for e in everywhere} == {calls_id, seat_id}
    v2 = om.entitlements_v2.list(customer_keys=["ls"], entitlement_type=["boolean"])
    assert [read(e).id for e in v2.items_property] == [seat_id]
    assert read(om.entitlements.get(calls_id)).subject_key == "ls-subject"
    assert read(om.entitlements_v2.get(seat_id)).customer_key == "ls"
    assert read(om.customer_entitlements_v2.get("ls", "ls_calls")).id == calls_id


def test_om157_writes_on_a_view_are_refused_409_and_change_nothing(
    om: Client, http: httpx.Client, subjects: Any
) -> None:
    subscription_id = _subscribed(om, http, "ro")
    view_id = _view_id(subscription_id, "ro_calls")
    before = om.customer_entitlements_v2.list("ro")
    reset = m.ResetEntitlementUsageInput()
    grant = m.EntitlementGrantCreateInputV2(amount=5, effective_at=dt.datetime.now(dt.UTC))
    replacement = m.EntitlementBooleanCreateInputs(type=m.EntitlementType.BOOLEAN,
                                                   feature_key="ro_calls")  # fmt: skip
    writes = [
        lambda: om.customer_entitlements_v2.delete("ro", view_id),
        lambda: om.customer_entitlements_v2.delete("ro", "ro_calls"),
        lambda: om.customer_entitlement_v2.reset_customer_entitlement("ro", view_id, reset),
        lambda: om.customer_entitlements_v2.override("ro", "ro_calls", replacement),
        lambda: subjects.delete("ro-subject", view_id),
        lambda: om.customer_entitlement_v2.create_customer_entitlement_grant("ro", view_id, grant),
        lambda: om.customer_entitlement_v2.create_customer_entitlement_grant(
            "ro", "ro_calls", grant
        ),
    ]
    for write in writes:
        problem = refused(write)
        assert problem.status == 409, problem.body
        assert "read-only" in problem.body["detail"] and subscription_id in problem.body["detail"]
    assert om.customer_entitlements_v2.list("ro") == before


def test_om154_a_native_entitlement_hides_the_view(om: Client, http: httpx.Client) -> None:
    """The native one answers in OpenMeter views; the Tanso check stays the plan's."""
    subscription_id = _subscribed(om, http, "nv")
    native = read(om.customer_entitlements_v2.post("nv", m.EntitlementBooleanCreateInputs(
        type=m.EntitlementType.BOOLEAN, feature_key="nv_calls")))  # fmt: skip
    value = om.customer_entitlement.get_customer_entitlement_value("nv", "nv_calls")
    assert value.has_access is True and value.balance is None  # the boolean one
    listed = [read(e).id for e in om.customer_entitlements_v2.list("nv").items_property]
    assert listed == [_view_id(subscription_id, "nv_seat"), native.id]  # by createdAt
    view_id = _view_id(subscription_id, "nv_calls")
    problem = refused(lambda: om.entitlements.get(view_id))
    assert (problem.status, problem.fields) == (404, ["entitlementId"])
    assert _check(http, "nv", "nv_calls")["usage"]["limit"] == LIMIT
    om.customer_entitlements_v2.delete("nv", native.id)
    assert read(om.entitlements.get(view_id)).type == "metered"  # the plan's view is back
