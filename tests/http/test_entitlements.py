"""checkEntitlement and evaluateEntitlement (ENT-1..ENT-34, SIM-1..SIM-8, checklist 18-21)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.helpers import (
    C,
    Client,
    check,
    create_customer,
    error,
    evaluate,
    event,
    get_customer,
    ok,
    paid_subscriber,
    plan_doc,
    pool,
    put_catalog,
    subscribe,
)

WOULD_EXCEED = "Requested usage would exceed the limit."
LIMIT = "Usage limit exceeded for this billing period."


def reason(decision: dict[str, Any]) -> str:
    assert decision["isAllowed"] is False, decision
    text: str = decision["meta"]["reason"]["description"]
    return text


def audit_count(client: Client) -> int:
    """Audit records written so far in the sandbox (ENT-30), from the admin statistics."""
    shards = ok(client.get("/api/v1/admin/statistics"))["shards"]
    return sum(s["audits"]["appended"] for s in shards if s["environment"] == "test")


def usage_link(key: str, **extra: Any) -> dict[str, Any]:
    return {"featureKey": key, "pricingType": "usage_based", "pricePerUnit": 0, **extra}


@pytest.fixture
def plans(client: Client) -> None:
    """Plans with the limits these tests need (all free, in arrears: active at once)."""
    put_catalog(
        client,
        plan_doc("limits", features=[
            usage_link("api_calls", maxUsage=10000),
            usage_link("storage_gb"),
            {"featureKey": "projects", "pricingType": "included"},
            usage_link("ai_chat", creditModelKey="llm_tokens"),
        ], creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": 10}]),
        plan_doc("no_pool", features=[usage_link("ai_chat", creditModelKey="llm_tokens")]),
        plan_doc("soft", features=[usage_link("ai_chat", creditModelKey="soft_tokens")],
                 creditAllocations=[{"creditModelKey": "soft_tokens", "creditAmount": 10}]),
        plan_doc("double_burn", features=[
            usage_link("ai_chat", creditModelKey="llm_tokens", creditsPerUnit=2),
        ], creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": 10}]),
        plan_doc("capped_credits", features=[
            usage_link("ai_chat", creditModelKey="llm_tokens", maxUsage=10),
        ], creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": 10}]),
        creditModels=[{"key": "soft_tokens", "denomination": "SOFT", "hardLimit": False}],
    )  # fmt: skip


def subscriber(client: Client, ref: str, *plan_keys: str) -> None:
    create_customer(client, ref)
    for key in plan_keys:
        subscribe(client, ref, key)


def use(client: Client, ref: str, feature: str, units: float, key: str | None = None) -> None:
    response = event(client, ref, key or f"{ref}-{feature}-{units}", eventName=feature,
                     usageUnits=units)  # fmt: skip
    assert response.status_code in (200, 201), response.text


# -- endpoints and echo -----------------------------------------------------------------------


def test_ent1_ent4_ent6_get_echoes_and_denials_are_200(client: Client) -> None:
    """ENT-1, ENT-4, ENT-6: 200 with EntitlementResponse echoing the path values, even when
    denied."""
    paid_subscriber(client, "echo", "free")
    allowed = ok(client.get(f"{C}/entitlements/echo/projects"))
    assert allowed == {"referenceCustomerId": "echo", "featureKey": "projects", "isAllowed": True}
    denied = ok(client.get(f"{C}/entitlements/echo/sso"))
    assert (denied["referenceCustomerId"], denied["featureKey"]) == ("echo", "sso")
    assert reason(denied) == "Feature not included in plan."


def test_ent2_evaluate_echoes_the_body(client: Client) -> None:
    """ENT-2, ENT-6: POST echoes customerReferenceId and featureKey."""
    paid_subscriber(client, "post_echo", "free")
    data = evaluate(client, "post_echo", "projects")
    assert (data["referenceCustomerId"], data["featureKey"], data["isAllowed"]) == (
        "post_echo", "projects", True
    )  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"featureKey": "x"}, "customerReferenceId"),
        ({"customerReferenceId": "x"}, "featureKey"),
        ({"customerReferenceId": "c" * 129, "featureKey": "x"}, "customerReferenceId"),
        ({"customerReferenceId": "x", "featureKey": "f" * 129}, "featureKey"),
        ({"customerReferenceId": "x", "featureKey": "y", "track": {"usageUnits": "ten"}},
         "usageUnits"),
        ({"customerReferenceId": "x", "featureKey": "y", "track": {"eventName": "e" * 129}},
         "eventName"),
        ({"customerReferenceId": "x", "featureKey": "y", "track": {"meta": "not-an-object"}},
         "meta"),
        ({"customerReferenceId": "x", "featureKey": "y", "context": {"flowId": "f" * 129}},
         "flowId"),
        ({"customerReferenceId": "x", "featureKey": "y",
          "context": {"idempotencyKey": "k" * 129}}, "idempotencyKey"),
        ({"customerReferenceId": "x", "featureKey": "y", "track": {"usageUnits": 0}},
         "usageUnits"),
        ({"customerReferenceId": "x", "featureKey": "y", "track": {"usageUnits": -5}},
         "usageUnits"),
    ],
)  # fmt: skip
def test_ent2_ent3_invalid_evaluation_is_400(
    client: Client, body: dict[str, Any], field: str
) -> None:
    """ENT-2, ENT-3, API-10: required fields, lengths, types; track.usageUnits must be > 0."""
    assert field in error(client.post(f"{C}/entitlements", json=body), 400)


def test_ent2_longest_values_are_accepted(client: Client) -> None:
    """ENT-2: 128 characters is within every limit."""
    data = evaluate(client, "c" * 128, "f" * 128, track={"eventName": "e" * 128},
                    context={"flowId": "w" * 128, "idempotencyKey": "k" * 128})  # fmt: skip
    assert data["flowId"] == "w" * 128
    assert reason(data) == "Customer not found."


# -- the decision procedure, in order ------------------------------------------------------------


def test_ent5_ent10_ent34_unknown_customer_is_a_denial_without_side_effects(
    client: Client,
) -> None:
    """ENT-5, ENT-10, ENT-34, checklist 21: 200 isAllowed false "Customer not found.", no
    auto-creation and no audit record; ENT-10 is checked before ENT-11."""
    before = audit_count(client)
    assert reason(check(client, "stranger", "api_calls")) == "Customer not found."
    assert reason(check(client, "stranger", "no_such_feature")) == "Customer not found."
    assert reason(evaluate(client, "stranger", "api_calls")) == "Customer not found."
    assert error(client.get(f"{C}/customers/stranger"), 404) == "Customer not found."
    assert audit_count(client) == before


def test_ent11_unknown_feature_is_checked_before_subscriptions(client: Client) -> None:
    """ENT-11, checklist 21: "Feature not found." comes before the subscription checks."""
    create_customer(client, "nosub")
    assert reason(check(client, "nosub", "teleport")) == "Feature not found."
    paid_subscriber(client, "withsub", "free")
    denied = check(client, "withsub", "teleport")
    assert reason(denied) == "Feature not found."
    assert "usage" not in denied and "credit" not in denied


def test_ent12_no_live_subscription(client: Client) -> None:
    """ENT-12, AMB-2: a customer without subscriptions -> "No active subscription."."""
    create_customer(client, "bare")
    denied = check(client, "bare", "projects")
    assert reason(denied) == "No active subscription."
    assert "usage" not in denied


def test_ent12_only_pending_payment(client: Client) -> None:
    """ENT-12, SUB-17: only PENDING_PAYMENT subscriptions -> "Subscription is awaiting
    payment.", with no usage block (ENT-22)."""
    create_customer(client, "waiting")
    subscribe(client, "waiting", "pro_monthly")
    denied = check(client, "waiting", "api_calls")
    assert reason(denied) == "Subscription is awaiting payment."
    assert "usage" not in denied and "credit" not in denied


def test_ent14_feature_not_in_any_active_plan(client: Client) -> None:
    """ENT-12, ENT-14, checklist 21: with an active plan that lacks the feature, the denial is
    "Feature not included in plan." even when a pending plan would include it."""
    create_customer(client, "mixed")
    subscribe(client, "mixed", "pro_monthly")  # pending: includes seats
    subscribe(client, "mixed", "free")  # active: no seats
    assert reason(check(client, "mixed", "seats")) == "Feature not included in plan."
    assert check(client, "mixed", "projects")["isAllowed"] is True


def test_ent14_auto_created_feature_exists_but_is_not_included(client: Client) -> None:
    """ENT-11, ENT-14, EVT-21: an auto-created feature is known but in no plan."""
    paid_subscriber(client, "newfeat", "free")
    event(client, "newfeat", "nf1", featureKey="beta_widget")
    assert reason(check(client, "newfeat", "beta_widget")) == "Feature not included in plan."


def test_ent15_ent21_ent23_limit_reached_is_denied_with_usage(client: Client) -> None:
    """ENT-15, ENT-21, ENT-23, checklist 18: limit 1000: used 999 allowed (remaining 1); used
    1000 denied with usage {1000, 1000, 0}."""
    paid_subscriber(client, "cap", "free")
    use(client, "cap", "api_calls", 999)
    allowed = check(client, "cap", "api_calls")
    assert allowed["isAllowed"] is True
    assert "meta" not in allowed
    assert allowed["usage"] == {"used": 999, "limit": 1000, "remaining": 1}
    use(client, "cap", "api_calls", 1)
    denied = check(client, "cap", "api_calls")
    assert reason(denied) == LIMIT
    assert denied["usage"] == {"used": 1000, "limit": 1000, "remaining": 0}
    use(client, "cap", "api_calls", 50)
    over = check(client, "cap", "api_calls")
    assert over["usage"] == {"used": 1050, "limit": 1000, "remaining": 0}


def test_ent21_ent22_unlimited_and_included(client: Client, plans: None) -> None:
    """ENT-21: unlimited -> `limit` and `remaining` omitted; ENT-22: included -> no usage."""
    del plans
    subscriber(client, "unl", "limits")
    use(client, "unl", "storage_gb", 12.5)
    assert check(client, "unl", "storage_gb") == {
        "referenceCustomerId": "unl", "featureKey": "storage_gb", "isAllowed": True,
        "usage": {"used": 12.5},
    }  # fmt: skip
    included = check(client, "unl", "projects")
    assert included["isAllowed"] is True
    assert "usage" not in included and "credit" not in included


def test_ent16_hard_pool_at_zero_denies(client: Client, plans: None) -> None:
    """ENT-16, ENT-24, checklist 29: a hard-limited pool at balance 0 -> "Insufficient
    credits." with the credit block."""
    del plans
    subscriber(client, "broke", "limits")
    use(client, "broke", "ai_chat", 10)
    denied = check(client, "broke", "ai_chat")
    assert reason(denied) == "Insufficient credits."
    assert denied["credit"] == {"denomination": "TOKENS", "balance": 0, "totalGranted": 10,
                                "totalConsumed": 10, "hardLimit": True}  # fmt: skip
    assert denied["usage"] == {"used": 10}


def test_ent16_no_pool_with_hard_model_default_denies(client: Client, plans: None) -> None:
    """ENT-16, CRD-32, ENT-24: no pool of a hard-limit model counts as balance 0; the credit
    block is omitted because there is no pool."""
    del plans
    subscriber(client, "poolless", "no_pool")
    denied = check(client, "poolless", "ai_chat")
    assert reason(denied) == "Insufficient credits."
    assert "credit" not in denied


def test_ent16_soft_pool_at_zero_still_allows(client: Client, plans: None) -> None:
    """CRD-32: without a hard limit access continues at zero balance."""
    del plans
    subscriber(client, "softy", "soft")
    use(client, "softy", "ai_chat", 25)
    data = check(client, "softy", "ai_chat")
    assert data["isAllowed"] is True
    assert data["credit"]["hardLimit"] is False
    assert data["credit"]["balance"] == 0
    assert data["credit"]["totalConsumed"] == 10


def test_ent15_is_checked_before_ent16(client: Client, plans: None) -> None:
    """§8.2 order: limit reached and credits exhausted -> the limit reason wins."""
    del plans
    subscriber(client, "both", "capped_credits")
    use(client, "both", "ai_chat", 10)
    denied = check(client, "both", "ai_chat")
    assert reason(denied) == LIMIT
    assert denied["usage"] == {"used": 10, "limit": 10, "remaining": 0}
    assert denied["credit"]["balance"] == 0


def test_ent18_oldest_active_subscription_governs(client: Client, plans: None) -> None:
    """ENT-18: the oldest ACTIVE subscription including the feature supplies the limit."""
    del plans
    subscriber(client, "old_free", "free", "limits")
    subscriber(client, "old_limits", "limits", "free")
    assert check(client, "old_free", "api_calls")["usage"]["limit"] == 1000
    assert check(client, "old_limits", "api_calls")["usage"]["limit"] == 10000
    create_customer(client, "pending_first")
    subscribe(client, "pending_first", "pro_monthly")  # not ACTIVE: cannot govern
    subscribe(client, "pending_first", "free")
    assert check(client, "pending_first", "api_calls")["usage"]["limit"] == 1000


def test_ent20_used_counts_this_period_and_feature_only(client: Client) -> None:
    """ENT-20, AMB-23: `used` sums events of this feature with occurredAt in the current
    period; earlier, later, other-feature and tracking-only events do not count."""
    paid_subscriber(client, "window", "free")
    event(client, "window", "w1", usageUnits=5)
    event(client, "window", "w2", usageUnits=7, occurredAt="2025-01-15T00:00:00Z")
    event(client, "window", "w3", usageUnits=100, occurredAt="2025-01-14T23:59:59Z")
    event(client, "window", "w4", usageUnits=100, occurredAt="2025-02-15T00:00:00Z")
    event(client, "window", "w5", usageUnits=100, eventName="projects")
    event(client, "window", "w6", usageUnits=100, eventName="page_view")
    event(client, "window", "w7", usageUnits=3, occurredAt="2025-02-14T23:59:59Z")
    assert check(client, "window", "api_calls")["usage"]["used"] == 15


def test_ent24_credit_block_shows_the_pool(client: Client, plans: None) -> None:
    """ENT-24: the credit block carries denomination, balance, totals and hardLimit."""
    del plans
    subscriber(client, "credited", "limits")
    use(client, "credited", "ai_chat", 3)
    data = check(client, "credited", "ai_chat")
    assert data["isAllowed"] is True
    assert data["credit"] == {"denomination": "TOKENS", "balance": 7, "totalGranted": 10,
                              "totalConsumed": 3, "hardLimit": True}  # fmt: skip
    assert "credit" not in check(client, "credited", "api_calls")


# -- GET versus POST -----------------------------------------------------------------------------


def test_ent25_post_without_track_equals_get(client: Client, plans: None) -> None:
    """ENT-25, checklist 19: without `track`, POST decides exactly like GET."""
    del plans
    subscriber(client, "same", "limits")
    paid_subscriber(client, "same_cap", "free")
    use(client, "same_cap", "api_calls", 1000)
    use(client, "same", "ai_chat", 4)
    create_customer(client, "same_waiting")
    subscribe(client, "same_waiting", "pro_monthly")
    cases = [("same", "api_calls"), ("same", "ai_chat"), ("same", "projects"),
             ("same", "sso"), ("same", "teleport"), ("same_cap", "api_calls"),
             ("same_waiting", "seats"), ("nobody", "api_calls")]  # fmt: skip
    for ref, feature in cases:
        get = check(client, ref, feature)
        post = evaluate(client, ref, feature)
        assert "flowId" not in get
        post.pop("flowId")
        assert post == get, (ref, feature)


def test_ent26_flow_id_only_on_post(client: Client) -> None:
    """ENT-26, checklist 20: POST echoes context.flowId or generates a UUID; GET never has
    one."""
    paid_subscriber(client, "flow", "free")
    assert evaluate(client, "flow", "projects", context={"flowId": "flow-42"})["flowId"] == (
        "flow-42"
    )
    first = evaluate(client, "flow", "projects")["flowId"]
    second = evaluate(client, "flow", "projects", context={})["flowId"]
    assert len(first) == 36 and first.count("-") == 4
    assert first != second
    assert evaluate(client, "nobody", "projects")["flowId"]
    assert "flowId" not in check(client, "flow", "projects")


def test_ent27_simulation_only_on_post_with_track(client: Client) -> None:
    """ENT-27: no `simulation` on GET or on a POST without `track`."""
    paid_subscriber(client, "nosim", "free")
    assert "simulation" not in check(client, "nosim", "api_calls")
    assert "simulation" not in evaluate(client, "nosim", "api_calls")
    assert "simulation" in evaluate(client, "nosim", "api_calls", track={})


# -- simulation ----------------------------------------------------------------------------------


def test_sim1_sim2_sim3_defaults_and_unlimited(client: Client, plans: None) -> None:
    """SIM-1..SIM-4: `track` without usageUnits simulates 1 unit; an unlimited feature still
    gets a simulation without projectedRemaining; an included feature counts used as 0."""
    del plans
    subscriber(client, "sim", "limits")
    use(client, "sim", "storage_gb", 40)
    unlimited = evaluate(client, "sim", "storage_gb", track={})
    assert unlimited["simulation"] == {"requestedUsage": 1, "projectedUsage": 41,
                                       "wouldExceedLimit": False}  # fmt: skip
    assert unlimited["isAllowed"] is True
    included = evaluate(client, "sim", "projects", track={"usageUnits": 3})
    assert included["simulation"] == {"requestedUsage": 3, "projectedUsage": 3,
                                      "wouldExceedLimit": False}  # fmt: skip
    limited = evaluate(client, "sim", "api_calls", track={"eventName": "api_calls"})
    assert limited["simulation"] == {"requestedUsage": 1, "projectedUsage": 1,
                                     "projectedRemaining": 9999, "wouldExceedLimit": False}  # fmt: skip


@pytest.mark.parametrize(
    ("requested", "projected", "remaining", "exceeds"),
    [(1000, 9000, 1000, False), (2000, 10000, 0, False), (2001, 10001, 0, True),
     (2000.5, 10000.5, 0, True), (0.5, 8000.5, 1999.5, False)],
)  # fmt: skip
def test_sim3_sim6_projection_against_limit_10000(
    client: Client,
    plans: None,
    requested: float,
    projected: float,
    remaining: float,
    exceeds: bool,
) -> None:
    """SIM-3..SIM-6, checklist 19: used 8000, limit 10000: 2000 reaches the limit and is
    allowed; 2001 would exceed it, so isAllowed is false with ENT-17's reason."""
    del plans
    subscriber(client, "proj", "limits")
    use(client, "proj", "api_calls", 8000)
    data = evaluate(client, "proj", "api_calls", track={"usageUnits": requested})
    assert data["simulation"] == {"requestedUsage": requested, "projectedUsage": projected,
                                  "projectedRemaining": remaining, "wouldExceedLimit": exceeds}  # fmt: skip
    assert data["usage"] == {"used": 8000, "limit": 10000, "remaining": 2000}
    if exceeds:
        assert reason(data) == WOULD_EXCEED
    else:
        assert data["isAllowed"] is True
        assert "meta" not in data


def test_sim5_hard_credit_balance_bounds_the_simulation(client: Client, plans: None) -> None:
    """SIM-5, SIM-6: a hard-limited pool exceeds when requested x burnRate > balance."""
    del plans
    subscriber(client, "sim_hard", "limits")
    at_balance = evaluate(client, "sim_hard", "ai_chat", track={"usageUnits": 10})
    assert at_balance["isAllowed"] is True
    assert at_balance["simulation"]["wouldExceedLimit"] is False
    above = evaluate(client, "sim_hard", "ai_chat", track={"usageUnits": 11})
    assert above["simulation"]["wouldExceedLimit"] is True
    assert reason(above) == WOULD_EXCEED
    assert "projectedRemaining" not in above["simulation"]


def test_sim5_burn_rate_multiplies_requested_units(client: Client, plans: None) -> None:
    """SIM-5, CRD-30: with 2 credits per unit and 10 credits, 5 units fit and 5.5 do not."""
    del plans
    subscriber(client, "burner", "double_burn")
    assert evaluate(client, "burner", "ai_chat", track={"usageUnits": 5})["isAllowed"] is True
    over = evaluate(client, "burner", "ai_chat", track={"usageUnits": 5.5})
    assert over["simulation"]["wouldExceedLimit"] is True
    assert reason(over) == WOULD_EXCEED


def test_sim5_soft_pool_never_exceeds(client: Client, plans: None) -> None:
    """SIM-5: without a hard limit and without a usage limit, wouldExceedLimit is false."""
    del plans
    subscriber(client, "sim_soft", "soft")
    data = evaluate(client, "sim_soft", "ai_chat", track={"usageUnits": 1_000_000})
    assert data["isAllowed"] is True
    assert data["simulation"]["wouldExceedLimit"] is False


def test_sim6_an_earlier_denial_keeps_its_reason(client: Client) -> None:
    """SIM-6, §8.2: at the limit, the ENT-15 reason wins over ENT-17; the simulation is still
    reported."""
    paid_subscriber(client, "atcap", "free")
    use(client, "atcap", "api_calls", 1000)
    data = evaluate(client, "atcap", "api_calls", track={"usageUnits": 1})
    assert reason(data) == LIMIT
    assert data["simulation"]["wouldExceedLimit"] is True
    assert data["simulation"]["projectedUsage"] == 1001


def test_sim7_simulation_records_nothing(client: Client, plans: None) -> None:
    """SIM-7: simulating never records usage and never debits credits."""
    del plans
    subscriber(client, "dry", "limits")
    for _ in range(3):
        evaluate(client, "dry", "api_calls", track={"usageUnits": 500, "eventName": "api_calls"})
        evaluate(client, "dry", "ai_chat", track={"usageUnits": 4})
    assert check(client, "dry", "api_calls")["usage"]["used"] == 0
    tokens = pool(client, "dry")
    assert (tokens["balance"], tokens["totalConsumed"]) == (10, 0)


def test_sim8_no_projected_cost(client: Client) -> None:
    """SIM-8: the simulation exposes no cost."""
    paid_subscriber(client, "nocost", "pro_monthly")
    simulation = evaluate(client, "nocost", "api_calls", track={"usageUnits": 10})["simulation"]
    assert set(simulation) == {"requestedUsage", "projectedUsage", "projectedRemaining",
                               "wouldExceedLimit"}  # fmt: skip


# -- audit events ---------------------------------------------------------------------------------


def test_ent30_every_check_writes_one_audit_record(client: Client) -> None:
    """ENT-30: one ENTITLEMENT_CHECKED record per GET and per POST, denials included."""
    paid_subscriber(client, "audited", "free")
    before = audit_count(client)
    check(client, "audited", "api_calls")
    check(client, "audited", "sso")
    evaluate(client, "audited", "api_calls")
    evaluate(client, "audited", "api_calls", track={"usageUnits": 5})
    assert audit_count(client) == before + 4


def test_ent31_audit_records_never_count_as_usage(client: Client) -> None:
    """ENT-31, checklist 20: many checks leave `used` unchanged and never push an event over
    the limit."""
    paid_subscriber(client, "quiet", "free")
    use(client, "quiet", "api_calls", 998)
    for _ in range(25):
        check(client, "quiet", "api_calls")
        evaluate(client, "quiet", "api_calls", track={"usageUnits": 1})
    assert check(client, "quiet", "api_calls")["usage"]["used"] == 998
    below = event(client, "quiet", "q-last", usageUnits=1)
    assert below.status_code == 201
    assert below.json() == {"success": True}


def test_ent32_context_idempotency_key_dedupes_audit_only(client: Client) -> None:
    """ENT-32: a repeated context.idempotencyKey returns the fresh decision with 200, writes no
    second audit record, never 409s, and lives apart from event keys."""
    paid_subscriber(client, "dedupe", "free")
    before = audit_count(client)
    first = evaluate(client, "dedupe", "api_calls", context={"idempotencyKey": "chk-1"})
    use(client, "dedupe", "api_calls", 1000)
    again = client.post(f"{C}/entitlements", json={
        "customerReferenceId": "dedupe", "featureKey": "api_calls",
        "context": {"idempotencyKey": "chk-1"}})  # fmt: skip
    second = ok(again)
    assert first["isAllowed"] is True
    assert reason(second) == LIMIT  # fresh, not replayed
    assert audit_count(client) == before + 1
    assert event(client, "dedupe", "chk-1", eventName="page_view").status_code == 201
    ok(client.post(f"{C}/entitlements", json={
        "customerReferenceId": "dedupe", "featureKey": "projects",
        "context": {"idempotencyKey": "dedupe-api_calls-1000"}}))  # an event key  # fmt: skip
    assert audit_count(client) == before + 2


def test_ent5_checks_never_create_customers_or_subscriptions(client: Client) -> None:
    """ENT-5: checks and evaluations have no effect on customers."""
    evaluate(client, "phantom", "projects", track={"usageUnits": 2})
    check(client, "phantom", "projects")
    assert error(client.get(f"{C}/customers/phantom"), 404)
    create_customer(client, "real")
    check(client, "real", "projects")
    assert get_customer(client, "real")["subscriptions"] == []
