"""listPlans (PLN-1..PLN-9)."""

from __future__ import annotations

from typing import Any

from tests.http.helpers import A, C, Client, advance, ok, plan_doc, put_catalog


def list_plans(client: Client) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = ok(client.get(f"{C}/plans"))
    return data


def by_key(client: Client) -> dict[str, dict[str, Any]]:
    return {entry["plan"]["key"]: entry for entry in list_plans(client)}


def feature(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return next(f for f in entry["features"] if f["key"] == key)


def test_pln1_each_entry_is_plan_features_allocations(client: Client) -> None:
    """PLN-1: `data` is an array of {plan, features, creditAllocations?}, one per plan."""
    data = list_plans(client)
    assert {e["plan"]["key"] for e in data} == {
        "free", "starter_monthly", "pro_monthly", "enterprise_monthly", "usage_monthly"
    }  # fmt: skip
    for entry in data:
        assert set(entry) <= {"plan", "features", "creditAllocations"}
        assert {"plan", "features"} <= set(entry)


def test_pln2_only_active_plans_are_listed(client: Client) -> None:
    """PLN-2: DRAFT and ARCHIVED plans are not listed; publishing and archiving move them."""
    put_catalog(
        client,
        plan_doc("drafty", status="DRAFT"),
        plan_doc("retired", status="ARCHIVED"),
        plan_doc("live_one", status="ACTIVE"),
    )
    keys = set(by_key(client))
    assert "live_one" in keys
    assert "drafty" not in keys and "retired" not in keys
    put_catalog(
        client, plan_doc("drafty", status="ACTIVE"), plan_doc("live_one", status="ARCHIVED")
    )
    keys = set(by_key(client))
    assert "drafty" in keys
    assert "live_one" not in keys


def test_pln3_order_is_created_at_then_id(client: Client) -> None:
    """PLN-3: oldest `createdAt` first, ties broken by `id`."""
    advance(client, seconds=60)
    put_catalog(client, plan_doc("later_b"), plan_doc("later_a"))
    advance(client, seconds=60)
    put_catalog(client, plan_doc("latest"))
    data = list_plans(client)
    keys = [e["plan"]["key"] for e in data]
    demo = [e["plan"]["id"] for e in data[:5]]
    assert demo == sorted(demo), "demo plans share createdAt: ordered by id"
    later = [e["plan"]["id"] for e in data[5:7]]
    assert later == sorted(later)
    assert {e["plan"]["key"] for e in data[5:7]} == {"later_a", "later_b"}
    assert keys[-1] == "latest"


def test_pln3_no_active_plans_gives_empty_list(client: Client) -> None:
    """PLN-3: with no ACTIVE plans, `data` is []."""
    catalog = ok(client.get(f"{A}/catalog"))
    for plan in catalog["plans"]:
        plan["status"] = "ARCHIVED"
    ok(client.put(f"{A}/catalog", json={"plans": catalog["plans"]}))
    response = client.get(f"{C}/plans")
    assert response.json() == {"success": True, "data": []}


def test_pln4_client_plan_dto(client: Client) -> None:
    """PLN-4: ClientPlanDto fields; `intervalMonths` is an integer here; no status."""
    plan = by_key(client)["pro_monthly"]["plan"]
    assert set(plan) == {"id", "key", "name", "description", "priceAmount", "currency",
                         "intervalMonths", "billingTiming", "metadata"}  # fmt: skip
    assert plan["name"] == "Pro"
    assert plan["description"] == "For growing teams"
    assert plan["priceAmount"] == 49
    assert plan["currency"] == "USD"
    assert plan["intervalMonths"] == 1
    assert isinstance(plan["intervalMonths"], int)
    assert plan["billingTiming"] == "IN_ADVANCE"
    assert plan["metadata"] == {"tier": "pro", "highlighted": True}
    assert by_key(client)["usage_monthly"]["plan"]["billingTiming"] == "IN_ARREARS"


def test_pln4_quarterly_and_empty_metadata(client: Client) -> None:
    """PLN-4, API-6: intervalMonths 3 is listed as 3; empty metadata and description omitted."""
    put_catalog(client, plan_doc("quarterly", intervalMonths=3, priceAmount=120.5,
                                 billingTiming="IN_ADVANCE"))  # fmt: skip
    plan = by_key(client)["quarterly"]["plan"]
    assert plan["intervalMonths"] == 3
    assert plan["priceAmount"] == 120.5
    assert "metadata" not in plan and "description" not in plan


def test_pln5_features_are_client_feature_dtos(client: Client) -> None:
    """PLN-5: every linked feature is listed with id, name, key, description, pricingType."""
    entries = by_key(client)
    pro = entries["pro_monthly"]
    assert [f["key"] for f in pro["features"]] == ["projects", "seats", "api_calls", "ai_chat"]
    api_calls = feature(pro, "api_calls")
    assert {"id", "name", "key", "description", "pricingType"} <= set(api_calls)
    assert api_calls["name"] == "API calls"
    assert api_calls["description"] == "Calls to the public REST API"
    assert api_calls["id"] == feature(entries["free"], "api_calls")["id"]  # one feature, one id


def test_pln5_plan_without_features_lists_empty_array(client: Client) -> None:
    """PLN-5: `features` is [] when nothing is linked."""
    put_catalog(client, plan_doc("empty_plan"))
    assert by_key(client)["empty_plan"]["features"] == []


def test_pln6_pricing_per_pricing_type(client: Client) -> None:
    """PLN-6: included -> no `pricing`; usage_based -> model "usage" with pricePerUnit etc.;
    graduated -> model "graduated" with tiers and no pricePerUnit; maxUsage omitted when
    unlimited."""
    entries = by_key(client)
    projects = feature(entries["pro_monthly"], "projects")
    assert projects["pricingType"] == "included"
    assert "pricing" not in projects
    api = feature(entries["pro_monthly"], "api_calls")
    assert api["pricingType"] == "usage_based"
    assert api["pricing"] == {
        "model": "usage", "pricePerUnit": 0.001, "unitLabel": "calls", "maxUsage": 100000,
        "resetMode": "reset",
    }  # fmt: skip
    unlimited = feature(entries["enterprise_monthly"], "api_calls")["pricing"]
    assert "maxUsage" not in unlimited
    assert unlimited["pricePerUnit"] == 0.0008
    storage = feature(entries["usage_monthly"], "storage_gb")
    assert storage["pricingType"] == "graduated"
    pricing = storage["pricing"]
    assert pricing["model"] == "graduated"
    assert "pricePerUnit" not in pricing
    assert pricing["unitLabel"] == "GB"
    assert pricing["resetMode"] == "reset"
    assert len(pricing["tiers"]) == 3


def test_pln7_reset_mode_defaults_to_reset(client: Client) -> None:
    """PLN-7: resetMode is "reset" when not configured; "accumulate" is listed as given."""
    put_catalog(
        client,
        plan_doc("modes", features=[
            {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0.1},
            {"featureKey": "storage_gb", "pricingType": "usage_based", "pricePerUnit": 1,
             "resetMode": "accumulate"},
        ]),
    )  # fmt: skip
    entry = by_key(client)["modes"]
    assert feature(entry, "api_calls")["pricing"]["resetMode"] == "reset"
    assert feature(entry, "storage_gb")["pricing"]["resetMode"] == "accumulate"


def test_pln8_tiers_ascending_ending_in_inf_without_zero_fees(client: Client) -> None:
    """PLN-8: tiers in ascending upTo, last upTo the string "inf", flatFee omitted when 0."""
    tiers = feature(by_key(client)["usage_monthly"], "storage_gb")["pricing"]["tiers"]
    assert tiers == [
        {"upTo": 100, "pricePerUnit": 0.5, "flatFee": 5},
        {"upTo": 1000, "pricePerUnit": 0.25},
        {"upTo": "inf", "pricePerUnit": 0.1},
    ]
    put_catalog(
        client,
        plan_doc("zero_fee", features=[
            {"featureKey": "storage_gb", "pricingType": "graduated", "tiers": [
                {"upTo": 10.5, "pricePerUnit": 1, "flatFee": 0},
                {"upTo": "inf", "pricePerUnit": 0, "flatFee": 2},
            ]},
        ]),
    )  # fmt: skip
    tiers = feature(by_key(client)["zero_fee"], "storage_gb")["pricing"]["tiers"]
    assert tiers == [{"upTo": 10.5, "pricePerUnit": 1}, {"upTo": "inf", "pricePerUnit": 0,
                                                         "flatFee": 2}]  # fmt: skip


def test_pln9_credit_allocations(client: Client) -> None:
    """PLN-9: creditAllocations omitted without allocations; PlanCreditAllocationDto otherwise."""
    entries = by_key(client)
    assert "creditAllocations" not in entries["free"]
    assert "creditAllocations" not in entries["usage_monthly"]
    (pro,) = entries["pro_monthly"]["creditAllocations"]
    assert set(pro) == {"id", "creditModelId", "creditModelName", "denomination",
                        "creditAmount", "createdAt"}  # fmt: skip
    assert pro["creditModelName"] == "LLM tokens"
    assert pro["denomination"] == "TOKENS"
    assert pro["creditAmount"] == 1_000_000
    (starter,) = entries["starter_monthly"]["creditAllocations"]
    assert starter["grantExpiresMonths"] == 1
    assert starter["creditModelId"] == pro["creditModelId"]
    assert starter["id"] != pro["id"]
    (enterprise,) = entries["enterprise_monthly"]["creditAllocations"]
    assert enterprise["hardLimit"] is False
    assert enterprise["creditAmount"] == 5_000_000
