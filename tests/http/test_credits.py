"""Credit pools, grants, the ledger and consumption (CRD-1..CRD-4, CRD-10..CRD-12,
CRD-20..CRD-33, CRD-42, CRD-50, CRD-51, checklist 29 and 31)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.http.helpers import (
    C,
    Client,
    advance,
    assert_invariant,
    check,
    create_customer,
    error,
    event,
    get_customer,
    grant,
    mark_paid,
    ok,
    paid_subscriber,
    plan_doc,
    pool,
    pools,
    put_catalog,
    subscribe,
)


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


def chat_plan(client: Client, key: str = "chat10", amount: int = 10, **allocation: Any) -> None:
    put_catalog(client, plan_doc(key, features=[
        {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0,
         "creditModelKey": "llm_tokens"}],
        creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": amount,
                            **allocation}]))  # fmt: skip


def spend(client: Client, ref: str, key: str, units: float) -> Any:
    return event(client, ref, key, eventName="ai_chat", usageUnits=units)


def assert_ledger(p: dict[str, Any]) -> None:
    """CRD-20, CRD-21: each entry's balances chain, and the totals are the ledger's sums."""
    transactions = p["transactions"]
    balance = Decimal(0)
    sums: dict[str, Decimal] = {"GRANT": Decimal(0), "DEBIT": Decimal(0),
                                "EXPIRATION": Decimal(0), "REVERSAL": Decimal(0)}  # fmt: skip
    for t in transactions:
        assert dec(t["balanceBefore"]) == balance, t
        assert dec(t["balanceAfter"]) == dec(t["balanceBefore"]) + dec(t["amount"]), t
        assert t["poolId"] == p["id"]
        balance = dec(t["balanceAfter"])
        sums[t["type"]] += dec(t["amount"])
    assert balance == dec(p["balance"])
    assert sums["GRANT"] == dec(p["totalGranted"])
    assert -sums["DEBIT"] == dec(p["totalConsumed"])
    assert -sums["EXPIRATION"] == dec(p["totalExpired"])
    assert_invariant(p)


# -- pools and grants ----------------------------------------------------------------------------


def test_crd1_pool_opened_by_a_plan_grant_takes_the_model_defaults(client: Client) -> None:
    """CRD-1, CRD-10, CRD-12: the first grant opens the pool: name = denomination, plan
    currency, hardLimit from the allocation or else the model, rollover from the model."""
    paid_subscriber(client, "pro", "pro_monthly")
    (p,) = pools(client, "pro")
    assert p["name"] == p["denomination"] == "TOKENS"
    assert p["currency"] == "USD"
    assert p["hardLimit"] is True  # pro's allocation leaves it to the model
    assert (p["rolloverPolicy"], p["rolloverCap"]) == ("CAPPED", 250000)
    assert p["status"] == "ACTIVE"
    assert (p["balance"], p["totalGranted"]) == (1_000_000, 1_000_000)
    assert (p["totalConsumed"], p["totalExpired"], p["totalReversed"]) == (0, 0, 0)
    paid_subscriber(client, "ent", "enterprise_monthly")
    assert pool(client, "ent")["hardLimit"] is False  # the allocation's own hardLimit


def test_crd1_one_pool_per_denomination(client: Client) -> None:
    """CRD-1: later grants of a denomination go to the same pool; another one opens a pool."""
    paid_subscriber(client, "one", "pro_monthly")
    pool_id = pool(client, "one")["id"]
    added = ok(grant(client, "one", 500, source="PROMOTION"), 201)
    assert added["id"] == pool_id
    assert added["totalGranted"] == 1_000_500
    ok(grant(client, "one", 3, denomination="GEMS", source="MANUAL"), 201)
    listed = pools(client, "one")
    assert [p["denomination"] for p in listed].count("TOKENS") == 1
    gems = pool(client, "one", "GEMS")
    assert gems["id"] != pool_id
    assert gems["customerId"] == pool(client, "one")["customerId"]
    assert gems["rolloverPolicy"] == "NONE"
    assert "rolloverCap" not in gems and "hardLimit" not in gems


def test_crd10_admin_grants_return_the_pool_with_grants(client: Client) -> None:
    """CRD-10: PURCHASE, PROMOTION and MANUAL grants, with and without expiresAt; 201 with the
    pool, its grants and its ledger."""
    create_customer(client, "buyer")
    first = ok(grant(client, "buyer", 100), 201)
    assert first["balance"] == 100
    assert [g["source"] for g in first["grants"]] == ["PURCHASE"]
    assert "expiresAt" not in first["grants"][0]
    second = ok(grant(client, "buyer", 50, source="PROMOTION",
                      expiresAt="2025-06-01T00:00:00Z"), 201)  # fmt: skip
    third = ok(grant(client, "buyer", 5.5, source="MANUAL"), 201)
    assert second["grants"][0]["expiresAt"] == "2025-06-01T00:00:00Z"
    assert dec(third["balance"]) == Decimal("155.5")
    assert sorted(g["source"] for g in third["grants"]) == ["MANUAL", "PROMOTION", "PURCHASE"]
    assert [t["type"] for t in third["transactions"]] == ["GRANT"] * 3
    assert_ledger(third)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"amount": 0}, 400),
        ({"amount": -5}, 400),
        ({"source": "SUBSCRIPTION"}, 400),
        ({"source": "GIFT"}, 400),
        ({"expiresAt": "2025-01-15T10:30:00Z"}, 400),
        ({"expiresAt": "2024-12-31T00:00:00Z"}, 400),
        ({"customerReferenceId": "nobody"}, 404),
    ],
)
def test_crd10_invalid_admin_grants(client: Client, body: dict[str, Any], status: int) -> None:
    """CRD-10: positive amounts, the three manual sources, a future expiry, a known customer."""
    create_customer(client, "g")
    response = client.post("/api/v1/admin/credits/grants", json={
        "customerReferenceId": "g", "denomination": "TOKENS", "amount": 5, "source": "PURCHASE",
        **body})  # fmt: skip
    error(response, status)
    assert "creditPools" not in get_customer(client, "g")


def test_crd11_allocation_expiry_is_calendar_months_after_the_grant(client: Client) -> None:
    """CRD-11, CRD-12: starter's allocation expires 1 month after it is granted, which for a
    paid in-advance plan is the moment the invoice is paid."""
    create_customer(client, "starter")
    invoice_id = subscribe(client, "starter", "starter_monthly")["invoice"]["id"]
    assert "creditPools" not in get_customer(client, "starter")
    advance(client, seconds=3600)
    ok(mark_paid(client, invoice_id))
    (plan_grant,) = pool(client, "starter", expand="grants")["grants"]
    assert plan_grant["source"] == "SUBSCRIPTION"
    assert plan_grant["grantedAt"] == "2025-01-15T11:30:00Z"
    assert plan_grant["expiresAt"] == "2025-02-15T11:30:00Z"
    assert plan_grant["amount"] == plan_grant["remaining"] == 100_000
    assert len(plan_grant["subscriptionId"]) == 36


def test_crd12_plan_allocation_granted_once(client: Client) -> None:
    """CRD-12, INV-21: one grant per (subscription, period, allocation), however often the
    invoice is marked paid."""
    create_customer(client, "once")
    invoice_id = subscribe(client, "once", "pro_monthly")["invoice"]["id"]
    for _ in range(3):
        ok(mark_paid(client, invoice_id))
    p = pool(client, "once", expand="grants,transactions")
    assert len(p["grants"]) == 1
    assert [t["type"] for t in p["transactions"]] == ["GRANT"]
    assert p["totalGranted"] == 1_000_000


# -- ledger and totals ----------------------------------------------------------------------------


def test_crd3_crd20_crd21_ledger_and_invariant_through_a_lifecycle(client: Client) -> None:
    """CRD-3, CRD-20, CRD-21: grants, debits and an expiry each append one transaction with
    exact balances, and balance = granted - consumed - expired - reversed after each step."""
    chat_plan(client)
    create_customer(client, "ledger")
    subscribe(client, "ledger", "chat10")
    assert_ledger(pool(client, "ledger", expand="transactions"))
    ok(grant(client, "ledger", 4, expiresAt="2025-01-20T00:00:00Z"), 201)
    assert spend(client, "ledger", "l-1", 2.5).status_code == 201
    p = pool(client, "ledger", expand="transactions")
    assert_ledger(p)
    assert [t["type"] for t in p["transactions"]] == ["GRANT", "GRANT", "DEBIT"]
    debit = p["transactions"][-1]
    assert dec(debit["amount"]) == Decimal("-2.5")
    assert debit["eventIdempotencyKey"] == "l-1"
    advance(client, to="2025-01-20T00:00:00Z")
    p = pool(client, "ledger", expand="transactions")
    assert_ledger(p)
    expiry = p["transactions"][-1]
    assert expiry["type"] == "EXPIRATION"
    assert dec(expiry["amount"]) == Decimal("-1.5")
    assert expiry["createdAt"] == "2025-01-20T00:00:00Z"
    assert (dec(p["totalExpired"]), dec(p["balance"])) == (Decimal("1.5"), Decimal(10))
    spend(client, "ledger", "l-2", 10)
    p = pool(client, "ledger", expand="transactions")
    assert_ledger(p)
    assert p["status"] == "DEPLETED"


def test_crd2_crd31_balance_never_goes_negative(client: Client) -> None:
    """CRD-2, CRD-31: a debit takes min(requested, balance); the rest stays uncovered."""
    put_catalog(client, plan_doc("softchat", features=[
        {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0.01,
         "creditModelKey": "soft"}],
        creditAllocations=[{"creditModelKey": "soft", "creditAmount": 10}]),
        creditModels=[{"key": "soft", "denomination": "SOFT"}])  # fmt: skip
    create_customer(client, "floor")
    subscribe(client, "floor", "softchat")
    for i in range(3):
        assert spend(client, "floor", f"f-{i}", 6).status_code == 201
    p = pool(client, "floor", "SOFT", expand="transactions")
    assert (p["balance"], p["totalConsumed"], p["status"]) == (0, 10, "DEPLETED")
    assert [dec(t["amount"]) for t in p["transactions"] if t["type"] == "DEBIT"] == [
        Decimal(-6), Decimal(-4)
    ]  # fmt: skip
    assert_ledger(p)


def test_crd4_depleted_then_active_again(client: Client) -> None:
    """CRD-4: DEPLETED when a debit empties the pool; ACTIVE again after a grant."""
    chat_plan(client)
    create_customer(client, "cycle")
    subscribe(client, "cycle", "chat10")
    spend(client, "cycle", "c-1", 10)
    assert pool(client, "cycle")["status"] == "DEPLETED"
    assert check(client, "cycle", "ai_chat")["meta"]["reason"]["description"] == (
        "Insufficient credits."
    )
    ok(grant(client, "cycle", 1), 201)
    assert pool(client, "cycle")["status"] == "ACTIVE"
    assert check(client, "cycle", "ai_chat")["isAllowed"] is True


# -- consumption order ----------------------------------------------------------------------------


def test_crd31_burn_order_soonest_expiry_first_then_oldest(client: Client) -> None:
    """CRD-31: soonest expiresAt first, non-expiring last, ties by oldest grantedAt; a debit
    spanning grants writes one DEBIT per grant in that order."""
    chat_plan(client)  # 10 plan credits, never expiring
    create_customer(client, "order")
    subscribe(client, "order", "chat10")
    late = ok(grant(client, "order", 5, expiresAt="2025-03-01T00:00:00Z"), 201)["grants"]
    advance(client, seconds=60)
    ok(grant(client, "order", 5, expiresAt="2025-02-01T00:00:00Z"), 201)
    advance(client, seconds=60)
    ok(grant(client, "order", 5, expiresAt="2025-02-01T00:00:00Z", source="PROMOTION"), 201)
    grants = pool(client, "order", expand="grants")["grants"]
    assert [g.get("expiresAt") for g in grants] == [
        "2025-02-01T00:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", None
    ]  # fmt: skip
    assert [g["source"] for g in grants] == ["PURCHASE", "PROMOTION", "PURCHASE", "SUBSCRIPTION"]
    assert grants[0]["grantedAt"] < grants[1]["grantedAt"]
    (march,) = [g for g in late if g.get("expiresAt") == "2025-03-01T00:00:00Z"]
    assert grants[2]["id"] == march["id"]
    spend(client, "order", "o-1", 7)
    p = pool(client, "order", expand="grants,transactions")
    assert [(g["id"], g["remaining"]) for g in p["grants"]] == [
        (grants[1]["id"], 3), (grants[2]["id"], 5), (grants[3]["id"], 10)
    ]  # fmt: skip
    debits = [t for t in p["transactions"] if t["type"] == "DEBIT"]
    assert [(t["grantId"], dec(t["amount"])) for t in debits] == [
        (grants[0]["id"], Decimal(-5)), (grants[1]["id"], Decimal(-2))
    ]  # fmt: skip
    spend(client, "order", "o-2", 10)
    remaining = [
        (g["id"], g["remaining"]) for g in pool(client, "order", expand="grants")["grants"]
    ]
    assert remaining == [(grants[3]["id"], 8)]
    assert_ledger(pool(client, "order", expand="transactions"))


def test_crd42_expired_grants_are_not_spent(client: Client) -> None:
    """CRD-42, CRD-31: at expiresAt the remainder expires and later debits skip the grant."""
    chat_plan(client, amount=1)
    create_customer(client, "expiry")
    subscribe(client, "expiry", "chat10")
    ok(grant(client, "expiry", 50, expiresAt="2025-01-16T00:00:00Z"), 201)
    spend(client, "expiry", "e-1", 20)  # from the expiring grant
    advance(client, to="2025-01-16T00:00:00Z")
    p = pool(client, "expiry", expand="grants")
    assert (p["balance"], p["totalExpired"], p["totalConsumed"]) == (1, 30, 20)
    assert [g["source"] for g in p["grants"]] == ["SUBSCRIPTION"]
    response = spend(client, "expiry", "e-2", 5)
    assert response.status_code == 200  # hard pool: only 1 of 5 covered
    p = pool(client, "expiry")
    assert (p["balance"], p["totalConsumed"]) == (0, 21)
    assert_invariant(p)


def test_crd30_credit_backed_feature_debits_per_unit_and_entitlement_mirrors_pool(
    client: Client,
) -> None:
    """CRD-30, ENT-24, CRD-50: usage of a credit-backed feature debits the pool, and the
    entitlement credit block shows the same numbers as the pool."""
    paid_subscriber(client, "mirror", "pro_monthly")
    assert spend(client, "mirror", "m-1", 1234.5).status_code == 201
    p = pool(client, "mirror")
    credit = check(client, "mirror", "ai_chat")["credit"]
    assert credit == {"denomination": p["denomination"], "balance": p["balance"],
                      "totalGranted": p["totalGranted"], "totalConsumed": p["totalConsumed"],
                      "hardLimit": p["hardLimit"]}  # fmt: skip
    assert dec(p["balance"]) == Decimal("998765.5")
    event(client, "mirror", "m-3", eventName="api_calls", usageUnits=50)
    assert dec(pool(client, "mirror")["totalConsumed"]) == Decimal("1234.5")


# -- reading pools -------------------------------------------------------------------------------


def test_crd51_pools_endpoint_equals_customer_credit_pools(client: Client) -> None:
    """CRD-51, CUS-13, checklist 31: GET /credits/{ref}/pools equals getCustomer creditPools."""
    paid_subscriber(client, "same", "pro_monthly")
    ok(grant(client, "same", 7, denomination="GEMS"), 201)
    spend(client, "same", "s-1", 100)
    listed = pools(client, "same")
    assert len(listed) == 2
    assert listed == get_customer(client, "same")["creditPools"]
    for p in listed:
        assert "grants" not in p and "transactions" not in p


def test_crd51_empty_unknown_and_bad_expand(client: Client) -> None:
    """CRD-51: [] without pools; unknown customer -> 404; an unknown expansion -> 400."""
    create_customer(client, "empty")
    assert client.get(f"{C}/credits/empty/pools").json() == {"success": True, "data": []}
    assert error(client.get(f"{C}/credits/ghost/pools"), 404) == "Customer not found."
    assert "expand" in error(client.get(f"{C}/credits/empty/pools?expand=ledger"), 400)
    assert ok(client.get(f"{C}/credits/empty/pools?expand=grants")) == []
