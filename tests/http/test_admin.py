"""The admin API: catalog (PLN-10, PLN-12), credit grants, and the manual clock (SCH-4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.http.conftest import check_envelope
from tests.http.helpers import (
    A,
    C,
    Client,
    advance,
    create_customer,
    error,
    event,
    get_customer,
    grant,
    invoices,
    ok,
    plan_doc,
    plan_id,
    put_catalog,
    subscribe,
)


def catalog(client: Client) -> dict[str, Any]:
    data: dict[str, Any] = ok(client.get(f"{A}/catalog"))
    return data


def listed_keys(client: Client) -> list[str]:
    return [p["plan"]["key"] for p in ok(client.get(f"{C}/plans"))]


def doc_plan(client: Client, key: str) -> dict[str, Any]:
    return next(p for p in catalog(client)["plans"] if p["key"] == key)


# -- catalog ----------------------------------------------------------------------------------


def test_catalog_get_put_round_trip(client: Client) -> None:
    """GET /admin/catalog returns a document that PUT accepts unchanged, and the catalog is
    then the same; ids are derived from keys and createdAt survives later upserts."""
    event(client, "rt", "rt-1", featureKey="auto_feature")  # includes an auto-created feature
    before = catalog(client)
    assert {"features", "creditModels", "plans"} <= set(before)
    assert ok(client.put(f"{A}/catalog", json=before)) == before
    assert catalog(client) == before
    advance(client, seconds=3600)
    ok(client.put(f"{A}/catalog", json=before))
    after = doc_plan(client, "pro_monthly")
    assert after["id"] == plan_id(client, "pro_monthly")
    assert after["createdAt"] == "2025-01-15T10:30:00Z"
    assert after["modifiedAt"] == "2025-01-15T11:30:00Z"
    assert listed_keys(client) == [p["plan"]["key"] for p in ok(client.get(f"{C}/plans"))]


def test_catalog_put_adds_and_updates_plans_by_key(client: Client) -> None:
    """PUT is an upsert by key: new plans appear, edited ones change, others stay."""
    put_catalog(client, plan_doc("added", description="first"))
    put_catalog(client, plan_doc("added", description="second", name="Renamed"))
    entry = next(e for e in ok(client.get(f"{C}/plans")) if e["plan"]["key"] == "added")
    assert (entry["plan"]["name"], entry["plan"]["description"]) == ("Renamed", "second")
    assert len(listed_keys(client)) == 6


def test_catalog_ids_are_derived_from_keys(client: Client) -> None:
    """A document naming a different id for a key is rejected."""
    plan = {**plan_doc("pro_monthly"), "id": "00000000-0000-0000-0000-000000000000"}
    assert "pro_monthly" in error(client.put(f"{A}/catalog", json={"plans": [plan]}), 400)


def _tiers(*tiers: dict[str, Any]) -> dict[str, Any]:
    return {"features": [{"featureKey": "storage_gb", "pricingType": "graduated",
                          "tiers": list(tiers)}]}  # fmt: skip


def _usage(**pricing: Any) -> dict[str, Any]:
    return {"features": [{"featureKey": "api_calls", "pricingType": "usage_based", **pricing}]}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"intervalMonths": 0}, "intervalMonths"),
        ({"intervalMonths": -3}, "intervalMonths"),
        ({"priceAmount": -1}, "priceAmount"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"billingTiming": "SOMETIMES"}, "billingTiming"),
        (_tiers({"upTo": 100, "pricePerUnit": 1}, {"upTo": 50, "pricePerUnit": 1},
                {"upTo": "inf", "pricePerUnit": 1}), "upTo"),
        (_tiers({"upTo": 100, "pricePerUnit": 1}, {"upTo": 100, "pricePerUnit": 1},
                {"upTo": "inf", "pricePerUnit": 1}), "upTo"),
        (_tiers({"upTo": 100, "pricePerUnit": 1}), "upTo"),
        (_tiers({"upTo": "inf", "pricePerUnit": 1}, {"upTo": 200, "pricePerUnit": 1}), "upTo"),
        (_tiers({"upTo": 100, "pricePerUnit": -1}, {"upTo": "inf", "pricePerUnit": 1}),
         "pricePerUnit"),
        (_tiers({"upTo": 100, "pricePerUnit": 1, "flatFee": -5},
                {"upTo": "inf", "pricePerUnit": 1}), "flatFee"),
        (_usage(pricePerUnit=-0.01), "pricePerUnit"),
        (_usage(pricePerUnit=1, maxUsage=0), "maxUsage"),
        (_usage(pricePerUnit=1, maxUsage=-10), "maxUsage"),
        ({"features": [{"featureKey": "api_calls", "pricingType": "included"},
                       {"featureKey": "api_calls", "pricingType": "included"}]}, "api_calls"),
        ({"features": [{"featureKey": "no_such_feature", "pricingType": "included"}]},
         "featureKey"),
        ({"creditAllocations": [{"creditModelKey": "no_model", "creditAmount": 5}]},
         "creditModelKey"),
    ],
)  # fmt: skip
def test_pln10_invalid_plan_is_400_naming_field_and_key(
    client: Client, patch: dict[str, Any], field: str
) -> None:
    """PLN-10: each rule gives 400 whose message names the field (and the plan key where the
    document is well-formed); nothing is applied."""
    before = catalog(client)
    response = client.put(f"{A}/catalog", json={"plans": [plan_doc("broken", **patch)]})
    message = error(response, 400)
    assert field in message
    if "Invalid catalog" in message:
        assert "plans[broken]" in message
    assert catalog(client) == before
    assert "broken" not in listed_keys(client)


def test_pln10_an_invalid_document_applies_nothing(client: Client) -> None:
    """PLN-10: one bad plan rejects the whole document, and every error is reported."""
    response = client.put(f"{A}/catalog", json={"plans": [
        plan_doc("fine"), plan_doc("bad", priceAmount=-1, intervalMonths=0)]})  # fmt: skip
    assert response.status_code == 400
    detail = response.json()["error"]["detail"]
    assert "plans[bad].priceAmount" in detail and "plans[bad].intervalMonths" in detail
    assert "fine" not in listed_keys(client)


def test_pln10_boundary_values_are_valid(client: Client) -> None:
    """PLN-10: price 0, maxUsage just above 0, zero flat fees and an ISO currency are fine."""
    put_catalog(client, plan_doc("edge", currency="JPY", priceAmount=0, features=[
        {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0,
         "maxUsage": 0.5},
        {"featureKey": "storage_gb", "pricingType": "graduated", "tiers": [
            {"upTo": 0.1, "pricePerUnit": 0, "flatFee": 0}, {"upTo": "inf", "pricePerUnit": 0}]},
    ]))  # fmt: skip
    entry = next(e for e in ok(client.get(f"{C}/plans")) if e["plan"]["key"] == "edge")
    assert entry["plan"]["currency"] == "JPY"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"priceAmount": 59}, "priceAmount"),
        ({"billingTiming": "IN_ARREARS"}, "billingTiming"),
        ({"intervalMonths": 12}, "intervalMonths"),
        ({"currency": "EUR"}, "currency"),
        ("drop_feature", "features"),
        ("reprice_feature", "features"),
    ],
)
def test_pln12_priced_fields_of_a_plan_in_use_cannot_change(
    client: Client, patch: dict[str, Any] | str, field: str
) -> None:
    """PLN-12: once subscribed, price, timing, interval, currency and feature pricing are
    frozen; the attempt is a 400 naming the field and nothing changes."""
    create_customer(client, "user")
    subscribe(client, "user", "pro_monthly")
    plan = doc_plan(client, "pro_monthly")
    if patch == "drop_feature":
        edited = {**plan, "features": plan["features"][1:]}
    elif patch == "reprice_feature":
        features = [dict(f) for f in plan["features"]]
        api = next(f for f in features if f["featureKey"] == "api_calls")
        api["maxUsage"] = 200000
        edited = {**plan, "features": features}
    else:
        assert isinstance(patch, dict)
        edited = {**plan, **patch}
    message = error(client.put(f"{A}/catalog", json={"plans": [edited]}), 400)
    assert f"plans[pro_monthly].{field}" in message
    assert doc_plan(client, "pro_monthly") == plan


def test_pln12_unpriced_fields_and_archiving_stay_allowed(client: Client) -> None:
    """PLN-12, PLN-2, SUB-11: name, description and metadata may change; archiving is always
    allowed, keeps existing subscriptions and stops new ones."""
    create_customer(client, "keeper")
    sub_id = subscribe(client, "keeper", "pro_monthly")["subscription"]["id"]
    pro_id = plan_id(client, "pro_monthly")
    plan = doc_plan(client, "pro_monthly")
    ok(
        client.put(
            f"{A}/catalog",
            json={
                "plans": [
                    {
                        **plan,
                        "name": "Pro (2024)",
                        "description": "Legacy",
                        "metadata": {"legacy": True},
                    }
                ]
            },
        )
    )
    assert get_customer(client, "keeper")["subscriptions"][0]["plan"]["name"] == "Pro (2024)"
    ok(client.put(f"{A}/catalog", json={"plans": [{**plan, "status": "ARCHIVED"}]}))
    assert "pro_monthly" not in listed_keys(client)
    (kept,) = get_customer(client, "keeper")["subscriptions"]
    assert (kept["id"], kept["plan"]["status"]) == (sub_id, "ARCHIVED")
    create_customer(client, "latecomer")
    response = client.post(f"{C}/subscriptions",
                           json={"customerReferenceId": "latecomer", "planId": pro_id})  # fmt: skip
    assert error(response, 404) == "Plan not found."


def test_pln12_plans_not_in_use_can_be_repriced(client: Client) -> None:
    """PLN-12 applies only once a subscription references the plan."""
    plan = doc_plan(client, "starter_monthly")
    ok(client.put(f"{A}/catalog", json={"plans": [{**plan, "priceAmount": 25}]}))
    entry = next(e for e in ok(client.get(f"{C}/plans")) if e["plan"]["key"] == "starter_monthly")
    assert entry["plan"]["priceAmount"] == 25


# -- credit grants ------------------------------------------------------------------------------


def test_admin_credit_grant_is_201_with_the_pool(client: Client) -> None:
    """CRD-10: POST /admin/credits/grants -> 201 with the pool, its grants and its ledger."""
    create_customer(client, "granted")
    data = ok(grant(client, "granted", 250, source="PROMOTION"), 201)
    assert (data["denomination"], data["balance"], data["totalGranted"]) == ("TOKENS", 250, 250)
    assert data["grants"][0]["source"] == "PROMOTION"
    assert data["transactions"][0]["type"] == "GRANT"
    assert data["customerId"] == get_customer(client, "granted")["creditPools"][0]["customerId"]


def test_admin_credit_grant_expiry_offset_is_normalised(client: Client) -> None:
    """API-7: an expiresAt with an offset is stored and shown in UTC."""
    create_customer(client, "tz")
    data = ok(grant(client, "tz", 1, expiresAt="2025-02-01T02:00:00+02:00"), 201)
    assert data["grants"][0]["expiresAt"] == "2025-02-01T00:00:00Z"


# -- the clock ---------------------------------------------------------------------------------


def test_sch4_clock_get_and_advance_by_seconds_and_to(client: Client) -> None:
    """SCH-4: GET /admin/clock shows the manual time; advance by `seconds` or `to`."""
    assert ok(client.get(f"{A}/clock")) == {"now": "2025-01-15T10:30:00Z", "mode": "manual"}
    moved = advance(client, seconds=5400)
    assert moved["now"] == "2025-01-15T12:00:00Z"
    assert moved["customersUpdated"] == 0
    assert advance(client, to="2025-03-01T08:00:00Z")["now"] == "2025-03-01T08:00:00Z"
    assert advance(client, to="2025-03-01T08:00:00Z")["now"] == "2025-03-01T08:00:00Z"
    assert advance(client, seconds=0)["now"] == "2025-03-01T08:00:00Z"
    assert ok(client.get(f"{A}/clock"))["now"] == "2025-03-01T08:00:00Z"
    assert ok(client.get(f"{A}/statistics"))["now"] == "2025-03-01T08:00:00Z"


def test_sch4_advance_to_with_an_offset_is_normalised(client: Client) -> None:
    """API-7: `to` with an offset moves the clock to that instant, shown in UTC."""
    assert advance(client, to="2025-01-16T02:00:00+02:00")["now"] == "2025-01-16T00:00:00Z"
    create_customer(client, "after")
    assert get_customer(client, "after")["createdAt"] == "2025-01-16T00:00:00Z"


@pytest.mark.parametrize(
    "body",
    [
        {"to": "2025-01-15T10:29:59Z"},
        {"to": "2024-01-01T00:00:00Z"},
        {"seconds": -1},
        {},
        {"seconds": 10, "to": "2025-02-01T00:00:00Z"},
        {"to": "tomorrow"},
        {"to": "2025-02-01T00:00:00"},
        {"seconds": 1.5},
    ],
)
def test_sch4_invalid_advances_are_400_and_do_not_move(
    client: Client, body: dict[str, Any]
) -> None:
    """SCH-4: going backwards, both or neither of seconds/to, or bad values -> 400."""
    error(client.post(f"{A}/clock/advance", json=body), 400)
    assert ok(client.get(f"{A}/clock"))["now"] == "2025-01-15T10:30:00Z"


def test_sch4_advance_applies_due_transitions(client: Client) -> None:
    """SCH-4, API-15, INV-12: advancing fires what is due and reports the customers touched."""
    create_customer(client, "due")
    subscribe(client, "due", "pro_monthly")
    create_customer(client, "idle")
    assert advance(client, to="2025-01-18T00:00:00Z")["customersUpdated"] == 1
    assert invoices(client, "due")[0]["status"] == "PAST_DUE"


@pytest.fixture
def system_clock_client(settings: Settings, keys: KeyStore) -> Iterator[TestClient[FastPath]]:
    system_settings = msgspec.structs.replace(settings, clock="system")
    app = create_app(system_settings, build_system(system_settings, persistent=False), keys)
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        test_client.event_hooks["response"].append(check_envelope)
        yield test_client


def test_sch4_clock_endpoints_refuse_a_system_clock(system_clock_client: Client) -> None:
    """SCH-4: with clock = "system" the clock cannot be read or moved through the API."""
    c = system_clock_client
    assert "manual" in error(c.get(f"{A}/clock"), 400)
    assert "manual" in error(c.post(f"{A}/clock/advance", json={"seconds": 60}), 400)
    assert "manual" in error(c.post(f"{A}/clock/advance", json={"to": "2999-01-01T00:00:00Z"}),
                             400)  # fmt: skip
    assert ok(c.get(f"{C}/plans"))
