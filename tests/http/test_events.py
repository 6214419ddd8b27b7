"""ingestEvent (EVT-1..EVT-47, checklist 22-26, 28-29)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from litestar.testing import AsyncTestClient

from allotment.http.fast_path import FastPath
from tests.http.helpers import (
    A,
    C,
    Client,
    advance,
    check,
    create_customer,
    error,
    event,
    get_customer,
    grant,
    ok,
    paid_subscriber,
    plan_doc,
    pool,
    put_catalog,
    subscribe,
)

DUPLICATE = "Duplicate event. An event with this idempotency key has already been processed."
OVER = "Usage limit exceeded for feature 'api_calls'."
DEPLETED = "Credit pool depleted for 'TOKENS'."
NIL = "00000000-0000-0000-0000-000000000000"


def post_event(client: Client, body: dict[str, Any], **headers: str) -> Any:
    return client.post(f"{C}/events", json=body, headers=headers)


def used(client: Client, ref: str, feature: str = "api_calls") -> Any:
    return check(client, ref, feature)["usage"]["used"]


def customer_count(client: Client) -> int:
    shards = ok(client.get("/api/v1/admin/statistics"))["shards"]
    return sum(s["customers"] for s in shards if s["environment"] == "test")


def feature_keys(client: Client) -> set[str]:
    return {f["key"] for f in ok(client.get(f"{A}/catalog"))["features"]}


def credit_plans(client: Client) -> None:
    chat = {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0.01}
    put_catalog(
        client,
        plan_doc("hard10", features=[{**chat, "creditModelKey": "llm_tokens"}],
                 creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": 10}]),
        plan_doc("soft10", features=[{**chat, "creditModelKey": "soft"}],
                 creditAllocations=[{"creditModelKey": "soft", "creditAmount": 10}]),
        plan_doc("burn25", features=[{**chat, "creditModelKey": "llm_tokens",
                                      "creditsPerUnit": 2.5}],
                 creditAllocations=[{"creditModelKey": "llm_tokens", "creditAmount": 100}]),
        creditModels=[{"key": "soft", "denomination": "SOFT", "hardLimit": False}],
    )  # fmt: skip


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"eventName": None}, "eventName"),
        ({"eventName": ""}, "eventName"),
        ({"eventName": "e" * 256}, "eventName"),
        ({"eventIdempotencyKey": "k" * 256}, "eventIdempotencyKey"),
        ({"usageUnits": -1}, "usageUnits"),
        ({"costAmount": -0.01}, "costAmount"),
        ({"revenueAmount": -1}, "revenueAmount"),
        ({"occurredAt": "yesterday"}, "occurredAt"),
        ({"flowId": "f" * 129}, "flowId"),
        ({"meta": "text"}, "meta"),
        ({"meta": {"blob": "x" * 17_000}}, "meta"),
        ({"featureId": "nope"}, "featureId"),
        ({"subscriptionId": "nope"}, "subscriptionId"),
        ({"entitlementId": "nope"}, "entitlementId"),
        ({"invoiceId": "nope"}, "invoiceId"),
        ({"costInput": {"inputTokens": 5}}, "model"),
        ({"costInput": {"model": "gpt-4o", "inputTokens": -5}}, "inputTokens"),
    ],
)
def test_evt1_to_evt7_invalid_event_is_400_and_changes_nothing(
    client: Client, patch: dict[str, Any], field: str
) -> None:
    """EVT-1, EVT-3..EVT-7, API-10: 400 naming the field; the key stays free and nothing is
    created (EVT-35)."""
    body = {"eventName": "api_calls", "customerReferenceId": "v_new",
            "eventIdempotencyKey": "v-1", **patch}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    assert field in error(post_event(client, body), 400)
    assert error(client.get(f"{C}/customers/v_new"), 404)
    assert event(client, "v_new", "v-1").status_code == 201


def test_evt6_meta_up_to_16kb_is_accepted(client: Client) -> None:
    """EVT-6: an arbitrary object under 16 KB serialised is fine, nested values included."""
    meta = {"blob": "x" * 16_000, "nested": {"list": [1, 2.5, "three", True]}}
    assert event(client, "meta_ok", "m-1", meta=meta, flowId="f" * 128).status_code == 201


# -- idempotency --------------------------------------------------------------------------------


def test_evt2_evt35_duplicate_key_is_409_and_changes_nothing(client: Client) -> None:
    """EVT-2, EVT-35, EVT-36, checklist 22: same key again, even with another payload -> 409;
    no usage, no auto-created customer, no auto-created feature."""
    paid_subscriber(client, "idem", "free")
    assert event(client, "idem", "k1", usageUnits=10).status_code == 201
    assert error(event(client, "idem", "k1", usageUnits=10), 409) == DUPLICATE
    assert error(event(client, "idem", "k1", usageUnits=999), 409) == DUPLICATE
    assert error(event(client, "someone_else", "k1"), 409) == DUPLICATE
    assert error(event(client, "idem", "k1", featureKey="brand_new"), 409) == DUPLICATE
    assert used(client, "idem") == 10
    assert error(client.get(f"{C}/customers/someone_else"), 404)
    assert "brand_new" not in feature_keys(client)


def test_evt2_header_key_overrides_body_key(client: Client) -> None:
    """EVT-2, checklist 22: a non-blank X-Idempotency-Key replaces eventIdempotencyKey."""
    paid_subscriber(client, "hdr", "free")
    body = {"eventName": "api_calls", "customerReferenceId": "hdr", "usageUnits": 2}
    first = post_event(client, {**body, "eventIdempotencyKey": "body-1"},
                       **{"X-Idempotency-Key": "head-1"})  # fmt: skip
    assert first.status_code == 201
    # the header key is the one on record...
    assert error(post_event(client, {**body, "eventIdempotencyKey": "head-1"}), 409) == DUPLICATE
    assert error(post_event(client, {**body, "eventIdempotencyKey": "other"},
                            **{"X-Idempotency-Key": "head-1"}), 409) == DUPLICATE  # fmt: skip
    # ...and the body key was never used
    assert post_event(client, {**body, "eventIdempotencyKey": "body-1"}).status_code == 201
    # the header alone suffices
    assert post_event(client, body, **{"X-Idempotency-Key": "head-2"}).status_code == 201
    # a blank header falls back to the body key
    assert post_event(client, {**body, "eventIdempotencyKey": "body-3"},
                      **{"X-Idempotency-Key": "  "}).status_code == 201  # fmt: skip
    assert error(post_event(client, {**body, "eventIdempotencyKey": "body-3"}), 409)
    assert used(client, "hdr") == 8


@pytest.mark.parametrize(
    ("body_key", "header"), [(None, None), ("", None), ("   ", None), ("  ", " "), (None, "")]
)
def test_evt2_no_key_is_400(client: Client, body_key: str | None, header: str | None) -> None:
    """EVT-2, AMB-38, checklist 22: neither a header nor a body key (or only blanks) -> 400."""
    body: dict[str, Any] = {"eventName": "api_calls", "customerReferenceId": "nokey"}
    if body_key is not None:
        body["eventIdempotencyKey"] = body_key
    headers = {} if header is None else {"X-Idempotency-Key": header}
    assert "dempotency" in error(post_event(client, body, **headers), 400)
    assert error(client.get(f"{C}/customers/nokey"), 404)


def test_evt2_header_key_longer_than_255_is_400(client: Client) -> None:
    """EVT-2: the header key obeys the same 255-character bound."""
    body = {"eventName": "api_calls", "customerReferenceId": "long"}
    assert error(post_event(client, body, **{"X-Idempotency-Key": "h" * 256}), 400)


def test_evt35_keys_are_scoped_to_the_environment_not_the_customer(client: Client) -> None:
    """EVT-35: one key namespace per environment: another customer cannot reuse a key."""
    assert event(client, "alpha", "shared-key").status_code == 201
    assert error(event(client, "beta", "shared-key"), 409) == DUPLICATE


def test_evt38_keys_never_expire(client: Client) -> None:
    """EVT-38: a key is still a duplicate a year later."""
    assert event(client, "forever", "old-key").status_code == 201
    advance(client, seconds=400 * 86400)
    assert error(event(client, "forever", "old-key"), 409) == DUPLICATE


@pytest.mark.anyio
async def test_evt37_concurrent_duplicates_exactly_one_wins(
    async_client: AsyncTestClient[FastPath],
) -> None:
    """EVT-37, API-14: of N concurrent requests with one key, exactly one is accepted."""
    statuses: list[int] = []

    async def send() -> None:
        response = await async_client.post(f"{C}/events", json={
            "eventName": "api_calls", "customerReferenceId": "race",
            "eventIdempotencyKey": "race-key", "usageUnits": 1})  # fmt: skip
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(send)
    assert sorted(statuses) == [201] + [409] * 19
    customer = (await async_client.get(f"{C}/customers/race")).json()
    assert customer["success"] is True


# -- customer resolution ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [
        {},
        {"customerReferenceId": "a", "customerId": NIL},
        {"customerReferenceId": "a", "stripeCustomerId": "cus_1"},
        {"customerId": NIL, "stripeCustomerId": "cus_1"},
    ],
)
def test_evt10_exactly_one_customer_identifier(client: Client, ids: dict[str, str]) -> None:
    """EVT-10, checklist 23: zero or several customer identifiers -> 400."""
    body = {"eventName": "api_calls", "eventIdempotencyKey": "ids-1", **ids}
    assert "customer" in error(post_event(client, body), 400).lower()
    assert error(client.get(f"{C}/customers/a"), 404)


def test_evt11_unknown_customer_id_is_404_and_releases_the_key(client: Client) -> None:
    """EVT-11, checklist 23: an unknown internal customerId -> 404 and is never auto-created;
    the key stays usable."""
    body = {"eventName": "api_calls", "eventIdempotencyKey": "cid-1", "customerId": NIL}
    assert error(post_event(client, body), 404) == "Customer not found."
    count = customer_count(client)
    create_customer(client, "known")
    customer_id = subscribe(client, "known", "free")["subscription"]["customer"]["id"]
    assert customer_count(client) == count + 1
    accepted = post_event(client, {**body, "customerId": customer_id, "usageUnits": 4})
    assert accepted.status_code == 201
    assert used(client, "known") == 4


def test_evt12_evt13_unknown_reference_auto_creates_a_bare_customer(client: Client) -> None:
    """EVT-12, EVT-13, EVT-44: an unknown customerReferenceId creates a customer with no
    profile and no subscription; the 201 may say so, never with usageLimitExceeded."""
    response = event(client, "newcomer", "nc-1", usageUnits=10**6)
    assert response.status_code == 201
    data = response.json().get("data", {})
    assert data.get("usageLimitExceeded") is not True
    customer = get_customer(client, "newcomer")
    assert customer["subscriptions"] == []
    assert "firstName" not in customer and "email" not in customer
    assert event(client, "newcomer", "nc-2").status_code == 201
    assert reason_of(check(client, "newcomer", "api_calls")) == "No active subscription."


def test_evt12_stripe_customer_id_auto_creates_once(client: Client) -> None:
    """EVT-12: an unknown stripeCustomerId creates exactly one customer, reused afterwards."""
    before = customer_count(client)
    body = {"eventName": "page_view", "stripeCustomerId": "cus_ABC"}
    assert post_event(client, {**body, "eventIdempotencyKey": "s-1"}).status_code == 201
    assert post_event(client, {**body, "eventIdempotencyKey": "s-2"}).status_code == 201
    assert customer_count(client) == before + 1


def reason_of(decision: dict[str, Any]) -> str:
    text: str = decision["meta"]["reason"]["description"]
    return text


# -- feature and subscription attribution -------------------------------------------------------


def test_evt20_event_name_equal_to_a_feature_key_counts(client: Client) -> None:
    """EVT-20 (3), checklist 25: only `eventName` = a plan feature key counts for it."""
    paid_subscriber(client, "byname", "free")
    assert event(client, "byname", "n-1", eventName="api_calls", usageUnits=3).status_code == 201
    assert used(client, "byname") == 3


def test_evt20_resolution_order(client: Client) -> None:
    """EVT-20: featureId, then featureKey, then eventName; otherwise tracking-only."""
    paid_subscriber(client, "order", "usage_monthly")
    features = ok(client.get(f"{C}/plans"))
    api_id = next(f["id"] for p in features for f in p["features"] if f["key"] == "api_calls")
    event(client, "order", "o-1", eventName="storage_gb", featureId=api_id,
          featureKey="storage_gb", usageUnits=1)  # fmt: skip
    event(client, "order", "o-2", eventName="api_calls", featureKey="storage_gb", usageUnits=10)
    event(client, "order", "o-3", eventName="page_view", usageUnits=100)
    assert used(client, "order", "api_calls") == 1
    assert used(client, "order", "storage_gb") == 10


def test_evt20_unknown_feature_id_is_400(client: Client) -> None:
    """EVT-20 (1): a featureId that does not exist -> 400 with exactly the spec's message,
    "Unknown featureId." (it said "featureId: Unknown featureId." before issue 12)."""
    response = event(client, "fid", "f-1", featureId=NIL)
    assert error(response, 400) == "Unknown featureId."
    batch = client.post(
        f"{C}/events/batch",
        json={"events": [{"eventName": "api_calls", "customerReferenceId": "fid",
                          "eventIdempotencyKey": "f-2", "featureId": NIL}]},
    )  # fmt: skip
    assert batch.json()["data"]["results"][0]["error"]["message"] == "Unknown featureId."
    assert error(client.get(f"{C}/customers/fid"), 404)
    assert event(client, "fid", "f-1").status_code == 201


def test_evt21_unknown_feature_key_auto_creates_the_feature(client: Client) -> None:
    """EVT-21, checklist 25: an unknown featureKey creates a feature named from the key, with
    no plan link; the event counts for nothing billable."""
    paid_subscriber(client, "creator", "free")
    response = event(client, "creator", "fk-1", featureKey="report_export-pdf", usageUnits=2)
    assert response.status_code == 201
    catalog = ok(client.get(f"{A}/catalog"))
    (created,) = [f for f in catalog["features"] if f["key"] == "report_export-pdf"]
    assert created["name"] == "report export pdf"
    assert reason_of(check(client, "creator", "report_export-pdf")) == (
        "Feature not included in plan."
    )
    assert event(client, "creator", "fk-2", featureKey="report_export-pdf").status_code == 201
    assert sorted(feature_keys(client)).count("report_export-pdf") == 1
    for entry in ok(client.get(f"{C}/plans")):
        assert "report_export-pdf" not in [f["key"] for f in entry["features"]]


def test_evt22_foreign_entitlement_id_is_400(client: Client) -> None:
    """EVT-22: an entitlementId that is not the customer's -> 400."""
    paid_subscriber(client, "ent", "free")
    assert "entitlementId" in error(event(client, "ent", "e-1", entitlementId=NIL), 400)


def test_evt23_invoice_id_must_belong_to_the_customer(client: Client) -> None:
    """EVT-23: the customer's own invoice is accepted; another's, or an unknown one -> 400."""
    own = paid_subscriber(client, "inv_owner", "free")["invoice"]["id"]
    other = paid_subscriber(client, "inv_other", "free")["invoice"]["id"]
    assert event(client, "inv_owner", "i-1", invoiceId=own).status_code == 201
    assert "invoiceId" in error(event(client, "inv_owner", "i-2", invoiceId=other), 400)
    assert "invoiceId" in error(event(client, "inv_owner", "i-3", invoiceId=NIL), 400)
    assert used(client, "inv_owner") == 1
    # a rejected first event leaves no auto-created customer behind
    assert "invoiceId" in error(event(client, "inv_new", "i-4", invoiceId=own), 400)
    assert error(client.get(f"{C}/customers/inv_new"), 404) == "Customer not found."
    assert event(client, "inv_new", "i-4").status_code == 201


def test_evt24_pinned_subscription(client: Client) -> None:
    """EVT-24: `subscriptionId` must be the customer's; the event counts under it, not under
    the governing subscription; a non-ACTIVE one stores the event without counting it."""
    put_catalog(client, plan_doc("big", features=[
        {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0,
         "maxUsage": 10000}]))  # fmt: skip
    create_customer(client, "pin")
    subscribe(client, "pin", "free")  # governs api_calls: oldest
    big = subscribe(client, "pin", "big")["subscription"]["id"]
    pending = subscribe(client, "pin", "pro_monthly")["subscription"]["id"]
    stranger = paid_subscriber(client, "stranger", "free")["subscription"]["id"]
    assert "subscriptionId" in error(event(client, "pin", "p-0", subscriptionId=stranger), 400)
    assert "subscriptionId" in error(event(client, "pin", "p-1", subscriptionId=NIL), 400)
    pinned = event(client, "pin", "p-2", subscriptionId=big, usageUnits=5000)
    assert pinned.status_code == 201  # judged against big's 10000, not free's 1000
    assert used(client, "pin") == 0  # free still governs, and saw none of it
    inactive = event(client, "pin", "p-3", subscriptionId=pending, usageUnits=10**6)
    assert inactive.status_code == 201
    assert "usageLimitExceeded" not in inactive.text
    assert used(client, "pin") == 0


# -- limits and the response ----------------------------------------------------------------------


def test_evt40_evt43_crossing_event_and_later_ones_are_flagged(client: Client) -> None:
    """EVT-40..EVT-43, checklist 24: 201 below the limit; the event reaching it and every later
    one -> 200 with usageLimitExceeded; every unit is still recorded."""
    paid_subscriber(client, "limit", "free")
    first = event(client, "limit", "l-1", usageUnits=600)
    assert first.status_code == 201
    assert first.json() == {"success": True}
    assert event(client, "limit", "l-2", usageUnits=399).status_code == 201
    crossing = event(client, "limit", "l-3", usageUnits=1)
    assert crossing.status_code == 200
    assert crossing.json() == {"success": True,
                               "data": {"usageLimitExceeded": True, "message": OVER}}  # fmt: skip
    later = event(client, "limit", "l-4", usageUnits=5)
    assert later.status_code == 200
    assert ok(later) == {"usageLimitExceeded": True, "message": OVER}
    assert used(client, "limit") == 1005
    zero = event(client, "limit", "l-5", usageUnits=0)
    assert ok(zero)["usageLimitExceeded"] is True  # "reached or exceeded"


def test_evt40_a_jump_over_the_limit_is_flagged(client: Client) -> None:
    """EVT-40, EVT-43: one event taking usage from 999 to 1500 is over limit, fully stored."""
    paid_subscriber(client, "jump", "free")
    assert event(client, "jump", "j-1", usageUnits=999).status_code == 201
    assert ok(event(client, "jump", "j-2", usageUnits=501))["usageLimitExceeded"] is True
    assert used(client, "jump") == 1500


def test_evt4_default_and_fractional_units(client: Client) -> None:
    """EVT-4: usageUnits defaults to 1; fractions and 0 are accepted."""
    paid_subscriber(client, "units", "free")
    assert event(client, "units", "u-1").status_code == 201
    assert event(client, "units", "u-2", usageUnits=0.25).status_code == 201
    assert event(client, "units", "u-3", usageUnits=0).status_code == 201
    assert used(client, "units") == 1.25


def test_evt3_occurred_at_defaults_to_receipt_time(client: Client) -> None:
    """EVT-3: without occurredAt the event lands in the current period; an explicit instant in
    the previous month does not."""
    paid_subscriber(client, "when", "free")
    event(client, "when", "w-1", usageUnits=2)
    event(client, "when", "w-2", usageUnits=50, occurredAt="2024-12-31T10:00:00Z")
    assert used(client, "when") == 2


def test_evt45_evt46_no_active_subscription_is_never_over_limit(client: Client) -> None:
    """EVT-45, EVT-46: events for customers without an ACTIVE subscription, and tracking-only
    events, are accepted with 201 and never flagged."""
    create_customer(client, "pending_only")
    subscribe(client, "pending_only", "pro_monthly")
    response = event(client, "pending_only", "po-1", usageUnits=10**9)
    assert response.status_code == 201
    assert "usageLimitExceeded" not in response.text
    paid_subscriber(client, "tracker", "free")
    event(client, "tracker", "t-0", usageUnits=1000)
    tracking = event(client, "tracker", "t-1", eventName="page_view", usageUnits=10**6)
    assert tracking.status_code == 201
    assert "usageLimitExceeded" not in tracking.text


def test_evt30_cost_inputs_are_accepted(client: Client) -> None:
    """EVT-30, AMB-12: costAmount, costInput (known and unknown model), revenueAmount and
    stripe-style extras are accepted and do not change usage counting."""
    paid_subscriber(client, "costs", "free")
    cases: list[dict[str, Any]] = [
        {"costAmount": 0.0123},
        {"costInput": {"model": "gpt-4o", "modelProvider": "openai", "inputTokens": 1200,
                       "outputTokens": 350}},
        {"costInput": {"model": "gpt-4o-mini", "inputTokens": 10}},
        {"costInput": {"model": "no-such-model", "inputTokens": 1, "outputTokens": 1}},
        {"costAmount": 0.5, "costInput": {"model": "gpt-4o", "inputTokens": 1}},
        {"revenueAmount": 0.25, "costAmount": 0},
    ]  # fmt: skip
    for i, extra in enumerate(cases):
        assert event(client, "costs", f"cost-{i}", **extra).status_code == 201, extra
    assert used(client, "costs") == len(cases)


# -- credits -------------------------------------------------------------------------------------


def test_evt41_credit_debit_and_depleted_hard_pool(client: Client) -> None:
    """EVT-41, EVT-43, CRD-4, CRD-31, CRD-32, checklist 29: balance 10: an event of 10 -> 201,
    balance 0, DEPLETED, then denied; an event of 5 -> 200 "Credit pool depleted for
    'TOKENS'.", balance stays 0; the event still counts as usage."""
    credit_plans(client)
    create_customer(client, "hard")
    subscribe(client, "hard", "hard10")
    full = event(client, "hard", "h-1", eventName="ai_chat", usageUnits=10)
    assert full.status_code == 201
    tokens = pool(client, "hard")
    assert (tokens["balance"], tokens["status"], tokens["totalConsumed"]) == (0, "DEPLETED", 10)
    assert reason_of(check(client, "hard", "ai_chat")) == "Insufficient credits."
    over = event(client, "hard", "h-2", eventName="ai_chat", usageUnits=5)
    assert over.status_code == 200
    assert ok(over) == {"usageLimitExceeded": True, "message": DEPLETED}
    tokens = pool(client, "hard")
    assert (tokens["balance"], tokens["totalConsumed"]) == (0, 10)
    assert used(client, "hard", "ai_chat") == 15


def test_evt41_partial_cover_on_a_hard_pool_is_flagged(client: Client) -> None:
    """EVT-41, CRD-31: 15 units against 10 credits debits 10 and flags the event."""
    credit_plans(client)
    create_customer(client, "partial")
    subscribe(client, "partial", "hard10")
    response = event(client, "partial", "pt-1", eventName="ai_chat", usageUnits=15)
    assert ok(response) == {"usageLimitExceeded": True, "message": DEPLETED}
    tokens = pool(client, "partial")
    assert (tokens["balance"], tokens["totalConsumed"], tokens["status"]) == (0, 10, "DEPLETED")


def test_evt41_soft_pool_overdraw_is_not_flagged(client: Client) -> None:
    """EVT-41, CRD-32: a pool without a hard limit covers what it can and never flags."""
    credit_plans(client)
    create_customer(client, "soft")
    subscribe(client, "soft", "soft10")
    response = event(client, "soft", "so-1", eventName="ai_chat", usageUnits=15)
    assert response.status_code == 201
    soft = pool(client, "soft", denomination="SOFT")
    assert (soft["balance"], soft["totalConsumed"]) == (0, 10)
    assert check(client, "soft", "ai_chat")["isAllowed"] is True


def test_evt41_burn_rate_multiplies_units(client: Client) -> None:
    """EVT-41, CRD-30: a debit is usageUnits x burnRate credits, rounded to 4 places."""
    credit_plans(client)
    create_customer(client, "burn")
    subscribe(client, "burn", "burn25")
    assert event(client, "burn", "b-1", eventName="ai_chat", usageUnits=3).status_code == 201
    assert event(client, "burn", "b-2", eventName="ai_chat", usageUnits=0.00003).status_code == 201
    tokens = pool(client, "burn")
    assert tokens["totalConsumed"] == pytest.approx(7.5001)
    assert tokens["balance"] == pytest.approx(92.4999)


def test_evt41_hard_model_without_pool_flags_the_event(client: Client) -> None:
    """EVT-41, CRD-32: no pool of a hard-limit model: nothing can be covered -> flagged."""
    put_catalog(client, plan_doc("nopool", features=[
        {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0,
         "creditModelKey": "llm_tokens"}]))  # fmt: skip
    create_customer(client, "np")
    subscribe(client, "np", "nopool")
    assert ok(event(client, "np", "np-1", eventName="ai_chat")) == {
        "usageLimitExceeded": True, "message": DEPLETED}  # fmt: skip
    assert "creditPools" not in get_customer(client, "np")


def test_evt41_purchased_credits_revive_a_depleted_pool(client: Client) -> None:
    """EVT-41, CRD-4: after a grant the pool is ACTIVE again and events are covered."""
    credit_plans(client)
    create_customer(client, "revive")
    subscribe(client, "revive", "hard10")
    event(client, "revive", "r-1", eventName="ai_chat", usageUnits=10)
    ok(grant(client, "revive", 20), 201)
    assert pool(client, "revive")["status"] == "ACTIVE"
    assert event(client, "revive", "r-2", eventName="ai_chat", usageUnits=20).status_code == 201
    assert pool(client, "revive")["balance"] == 0


# -- periods ------------------------------------------------------------------------------------


def test_checklist26_reset_restarts_and_accumulate_carries_over(client: Client) -> None:
    """ENT-20, SUB-36, checklist 26: after renewal `reset` usage starts at 0 and `accumulate`
    usage carries over (free in-advance plans renew without payment, SUB-33)."""
    put_catalog(client, plan_doc("acc", billingTiming="IN_ADVANCE", features=[
        {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0,
         "maxUsage": 1000, "resetMode": "accumulate"}]))  # fmt: skip
    paid_subscriber(client, "resetter", "free")
    paid_subscriber(client, "accumulator", "acc")
    event(client, "resetter", "r-1", usageUnits=700)
    event(client, "accumulator", "a-1", usageUnits=700)
    advance(client, to="2025-02-15T00:00:00Z")
    assert check(client, "resetter", "api_calls")["usage"] == {"used": 0, "limit": 1000,
                                                                "remaining": 1000}  # fmt: skip
    assert check(client, "accumulator", "api_calls")["usage"] == {"used": 700, "limit": 1000,
                                                                   "remaining": 300}  # fmt: skip
    assert event(client, "resetter", "r-2", usageUnits=400).status_code == 201
    assert ok(event(client, "accumulator", "a-2", usageUnits=400))["usageLimitExceeded"] is True
    assert check(client, "accumulator", "api_calls")["usage"]["used"] == 1100
