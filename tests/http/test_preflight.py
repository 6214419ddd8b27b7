"""`POST /entitlements/preflight` over HTTP (docs/reservations.md, RSV-30..RSV-39): the
estimate equals, to the cent, what the invoice bills once the units are recorded; reserve is
all or none; bad input is a 400 naming the field and changes nothing."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    C,
    Client,
    advance,
    create_customer,
    customer_state,
    error,
    event,
    invoices,
    ok,
    plan_doc,
    put_catalog,
    subscribe,
)
from tests.http.lifecycle_support import lines, money

TIERS = [
    {"upTo": 1000, "pricePerUnit": "0.002", "flatFee": "0.5"},
    {"upTo": "inf", "pricePerUnit": "0.001"},
]
LINKS = [
    {"featureKey": "input_tokens", "pricingType": "usage_based", "pricePerUnit": "0.0025",
     "creditModelKey": "tok", "creditsPerUnit": "0.001"},
    {"featureKey": "output_tokens", "pricingType": "graduated", "tiers": TIERS,
     "maxUsage": 50000},
    {"featureKey": "images", "pricingType": "graduated", "maxUsage": 50, "tiers": [
        {"upTo": 2, "pricePerUnit": "0.04"}, {"upTo": "inf", "pricePerUnit": "0.015"}]},
    {"featureKey": "sso", "pricingType": "included"},
]  # fmt: skip
SECTIONS: dict[str, Any] = {
    "features": [{"key": k} for k in ("input_tokens", "output_tokens", "images", "sso")],
    "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": False}],
}
LLM = plan_doc("llm", features=LINKS, creditAllocations=[
    {"creditModelKey": "tok", "creditAmount": 2, "hardLimit": False}])  # fmt: skip
ITEMS = [("input_tokens", "3001"), ("output_tokens", "700"), ("images", "3"),
         ("output_tokens", "700"), ("input_tokens", "999")]  # fmt: skip
HISTORY = [("input_tokens", "200"), ("output_tokens", "150"), ("images", "1")]


def _customer(client: Client, ref: str) -> None:
    """A subscriber to the `llm` plan (2 TOKENS a period, soft limit) with some usage already
    this period."""
    create_customer(client, ref)
    subscribe(client, ref, "llm")
    for n, (feature, units) in enumerate(HISTORY):
        _record(client, ref, f"{ref}-h{n}", feature, units)


def _record(client: Client, ref: str, key: str, feature: str, units: str) -> None:
    response = event(client, ref, key, eventName=feature, featureKey=feature,
                     usageUnits=int(units))  # fmt: skip
    assert response.status_code in (200, 201), response.text


def _preflight(client: Client, ref: str, items: list[tuple[str, Any]], **extra: Any) -> Any:
    body = {
        "customerReferenceId": ref,
        "items": [{"featureKey": f, "units": Decimal(str(u))} for f, u in items],
        **extra,
    }
    return client.post(f"{C}/entitlements/preflight", content=msgspec.json.encode(body),
                       headers={"content-type": "application/json"})  # fmt: skip


def _billed(system: ActorSystem, client: Client, ref: str) -> tuple[Decimal, dict[str, Decimal]]:
    """The amount of the invoice that billed January's period, and its usage per feature."""
    (first,) = [i for i in invoices(client, ref) if i["metadata"]["periodStart"].startswith(
        "2025-01-15")]  # fmt: skip
    per_feature: dict[str, Decimal] = {}
    for description, amount in lines(system, ref, first["id"]):
        found = re.match(r"Usage for (\w+)", description)
        if found:
            per_feature[found.group(1)] = per_feature.get(found.group(1), Decimal(0)) + amount
    return money(first["amount"]), per_feature


def _state(system: ActorSystem, ref: str) -> bytes:
    return msgspec.msgpack.encode(customer_state(system, ref))


def test_rsv_31_estimates_equal_the_invoice_to_the_cent(
    client: Client, system: ActorSystem
) -> None:
    """RSV-31, RSV-32, RSV-33 (the issue's pre-flight test), INV-33, INV-41, CRD-30, MNY-B3:
    a pre-flight of five items over three features (graduated tiers crossed twice, credits
    drawn then exhausted, sub-cent prices); then one customer per prefix of the items records
    them as events, and the period is billed. Each item's estimate is what its feature's line
    grew by, and the total what the invoice grew by."""
    put_catalog(client, LLM, **SECTIONS)
    refs = [f"p{k}" for k in range(len(ITEMS) + 1)]
    for ref in refs:
        _customer(client, ref)
    before = _state(system, "p0")
    answer = ok(_preflight(client, "p0", ITEMS))
    assert _state(system, "p0") == before  # RSV-30
    assert answer["isAllowed"] is True
    for k, ref in enumerate(refs):
        for n, (feature, units) in enumerate(ITEMS[:k]):
            _record(client, ref, f"{ref}-i{n}", feature, units)
    advance(client, to="2025-02-15T00:00:00Z")
    billed = [_billed(system, client, ref) for ref in refs]
    for k, item in enumerate(answer["items"]):
        feature = ITEMS[k][0]
        grew = billed[k + 1][1].get(feature, Decimal(0)) - billed[k][1].get(feature, Decimal(0))
        assert (item["featureKey"], Decimal(item["estimatedCharge"])) == (feature, grew), k
        assert item["currency"] == "USD"
    total = answer["estimatedTotal"]
    assert total["currency"] == "USD"
    assert Decimal(total["amount"]) == billed[-1][0] - billed[0][0]
    assert [i["estimatedCharge"] for i in answer["items"]] == [
        "3.00", "1.40", "0.07", "0.85", "2.50"]  # fmt: skip
    assert answer["items"][0]["credits"] == 1.8  # 2 TOKENS less 0.2 drawn by the history


def test_rsv_35_usage_after_the_whole_request(client: Client) -> None:
    """RSV-35, RSV-4: both output_tokens items show the usage after both; `sso` (included)
    has no usage block and costs 0.00."""
    put_catalog(client, LLM, **SECTIONS)
    _customer(client, "u")
    answer = ok(_preflight(client, "u", [("output_tokens", 700), ("sso", 1),
                                         ("output_tokens", 700)]))  # fmt: skip
    first, sso, second = answer["items"]
    assert (
        first["usageAfter"]
        == second["usageAfter"]
        == {"used": 1550, "reserved": 0, "limit": 50000, "remaining": 48450}
    )
    assert "usageAfter" not in sso and sso["estimatedCharge"] == "0.00"
    assert second["entitlement"]["simulation"]["projectedUsage"] == 1550


def test_rsv_36_reserve_is_all_or_none(client: Client, system: ActorSystem) -> None:
    """RSV-36, RSV-5: one item over its limit: 200, isAllowed false, nothing held. Then all
    allowed: 201, every item held; the same request again: 200, the same reservation."""
    put_catalog(client, LLM, **SECTIONS)
    _customer(client, "r")
    before = _state(system, "r")
    reserve = {"reservationId": "call-1", "ttlSeconds": 600}
    denied = ok(_preflight(client, "r", [("input_tokens", 10), ("images", 50)], reserve=reserve))
    assert denied["isAllowed"] is False
    assert denied["reason"] == "Requested usage would exceed the limit."
    reservation = denied["reservation"]  # as POST /reservations shows a denial (RSV-5)
    assert (reservation["id"], reservation["isAllowed"], reservation["status"]) == (
        "call-1", False, "DENIED")  # fmt: skip
    assert [i["isAllowed"] for i in denied["items"]] == [True, False]
    assert _state(system, "r") == before
    items = [("input_tokens", 10), ("images", 5)]
    held = ok(_preflight(client, "r", items, reserve=reserve), 201)
    assert held["reservation"]["status"] == "HELD"
    assert [i["featureKey"] for i in held["reservation"]["items"]] == ["input_tokens", "images"]
    assert held["reservation"]["expiresAt"] == "2025-01-15T10:40:00Z"
    held_units = {"input_tokens": Decimal(10), "images": Decimal(5)}
    assert customer_state(system, "r").held_units == held_units
    again = ok(_preflight(client, "r", items, reserve=reserve), 200)  # RSV-1
    assert again["reservation"]["createdAt"] == held["reservation"]["createdAt"]
    seen = ok(_preflight(client, "r", [("images", 1)]))
    assert seen["items"][0]["usageAfter"]["reserved"] == 5  # RSV-8: the hold counts


def test_rsv_37_bad_input_names_the_field_and_changes_nothing(
    client: Client, system: ActorSystem
) -> None:
    """RSV-37, RSV-3: each bad request is a 4xx naming the field; the state is unchanged."""
    put_catalog(client, LLM, **SECTIONS)
    _customer(client, "b")
    before = _state(system, "b")
    good = [("input_tokens", 1), ("images", 1)]
    cases: list[tuple[list[tuple[str, Any]], dict[str, Any], int, str]] = [
        ([], {}, 400, "'items'"),
        ([*good, ("images", 0)], {}, 400, "'items[2].units'"),
        ([*good, ("images", -3)], {}, 400, "'items[2].units'"),
        ([*good, ("images", "0.0000001")], {}, 400, "'items[2].units'"),
        ([("input_tokens", 1), ("nope", 1)], {}, 400, "'items[1].featureKey'"),
        ([("input_tokens", 1)] * 21, {}, 400, "'items'"),
        ([("input_tokens", 1), ("sso", 1)], {"reserve": {"reservationId": "x"}}, 400,
         "'items[1].featureKey'"),
        (good, {"reserve": {"reservationId": "x", "ttlSeconds": 0}}, 400, "'reserve.ttlSeconds'"),
        (good, {"reserve": {"reservationId": "x", "overage": "more"}}, 400, "reserve.overage"),
    ]  # fmt: skip
    for items, extra, status, field in cases:
        message = error(_preflight(client, "b", items, **extra), status)
        assert field in message, (items, extra, message)
    assert error(_preflight(client, "nobody", good), 404) == "Customer not found."
    assert _state(system, "b") == before


def test_rsv_36_committing_a_reserved_preflight_bills_its_estimate(
    client: Client, system: ActorSystem
) -> None:
    """RSV-36, RSV-12, RSV-31: reserve through the pre-flight, commit the whole group with the
    units asked (POST /reservations/{id}/commit), bill the period: the invoice grows by the
    estimated total, against a twin customer that recorded nothing."""
    put_catalog(client, LLM, **SECTIONS)
    for ref in ("held", "twin"):
        _customer(client, ref)
    reserve = {"reservationId": "group-1", "ttlSeconds": 600}
    answer = ok(_preflight(client, "held", ITEMS, reserve=reserve), 201)
    per_feature: dict[str, int] = {}
    for feature, units in ITEMS:
        per_feature[feature] = per_feature.get(feature, 0) + int(units)
    body = {"items": [{"featureKey": f, "usageUnits": u} for f, u in per_feature.items()]}
    committed = ok(client.post(f"{C}/reservations/group-1/commit", json=body))
    assert committed["reservation"]["status"] == "COMMITTED"
    advance(client, to="2025-02-15T00:00:00Z")
    (held_amount, _), (twin_amount, _) = (_billed(system, client, r) for r in ("held", "twin"))
    assert Decimal(answer["estimatedTotal"]["amount"]) == held_amount - twin_amount == Decimal(
        "7.82")  # fmt: skip
