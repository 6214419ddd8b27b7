"""Authentication, authorisation and the response envelope (AUTH-1..AUTH-7, API-3..API-13)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.system import ActorSystem
from tests.conftest import CLIENT_KEY, KEY, LIVE_KEY, READ_ONLY_KEY
from tests.http.conftest import check_envelope, find_nulls, served_in_memory
from tests.http.helpers import (
    A,
    C,
    Client,
    create_customer,
    error,
    event,
    get_customer,
    grant,
    ok,
    paid_subscriber,
    plan_doc,
    plan_id,
    put_catalog,
    subscribe,
)

UNAUTHORIZED = "Invalid or missing API key."
FORBIDDEN = "Access denied."
NIL = "00000000-0000-0000-0000-000000000000"
CUSTOMER = {"firstName": "Jane", "lastName": "Smith", "email": "jane@example.com"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _requests() -> list[tuple[str, str, Any]]:
    """One request per Client API operation that exists, plus the extension and admin routes."""
    return [
        ("POST", f"{C}/customers", {**CUSTOMER, "externalClientCustomerId": "a"}),
        ("GET", f"{C}/customers/a", None),
        ("POST", f"{C}/subscriptions", {"customerReferenceId": "a", "planId": NIL}),
        ("GET", f"{C}/plans", None),
        ("GET", f"{C}/entitlements/a/api_calls", None),
        ("POST", f"{C}/entitlements", {"customerReferenceId": "a", "featureKey": "api_calls"}),
        ("POST", f"{C}/events", {"eventName": "x", "eventIdempotencyKey": "k",
                                 "customerReferenceId": "a"}),
        ("GET", f"{C}/billing/invoices/a", None),
        ("POST", f"{C}/billing/invoices/{NIL}/mark-paid", None),
        ("POST", f"{C}/billing/invoices/{NIL}/stripe/checkout", None),
        ("GET", f"{C}/credits/a/pools", None),
        ("POST", f"{C}/subscriptions/cancellation/{NIL}", None),
        ("DELETE", f"{C}/subscriptions/cancellation/{NIL}/scheduled", None),
        ("POST", f"{C}/subscriptions/{NIL}/plan-change",
         {"changeToPlanId": NIL, "changeType": "UPGRADE"}),
        ("DELETE", f"{C}/subscriptions/{NIL}/plan-change/scheduled", None),
        ("GET", f"{A}/catalog", None),
        ("PUT", f"{A}/catalog", {}),
        ("POST", f"{A}/credits/grants", {}),
        ("GET", f"{A}/clock", None),
        ("POST", f"{A}/clock/advance", {"seconds": 1}),
    ]  # fmt: skip


def _send(client: Client, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """For the requests below that change nothing: refused before any route runs (AUTH-7), or
    matching no route."""
    with served_in_memory(tmp_path_factory.mktemp("unchanged")) as client:
        yield client


# -- 401 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), _requests())
def test_auth1_auth5_missing_key_is_401_on_every_route(
    unchanged: Client, method: str, path: str, body: Any
) -> None:
    """AUTH-1, AUTH-5, API-13: no key at all -> 401 "Invalid or missing API key." and no data."""
    response = _send(unchanged, method, path, body, {})
    assert error(response, 401) == UNAUTHORIZED
    assert response.json() == {"success": False, "error": {"message": UNAUTHORIZED}}


@pytest.mark.parametrize(
    "headers",
    [
        bearer("sk_test_" + "z" * 32),  # unknown
        bearer("sk_live_" + "z" * 32),  # unknown, live prefix
        bearer("garbage"),  # malformed
        bearer("sk_test_short"),  # malformed: too short
        bearer(""),  # empty token
        {"Authorization": f"Basic {KEY}"},  # wrong scheme
        {"Authorization": KEY},  # no scheme
        {"X-API-Key": "sk_test_" + "z" * 32},
        {"X-API-Key": ""},
        bearer(KEY + "x"),  # a valid key with a suffix
        bearer(KEY.upper()),  # keys compare exactly
    ],
)
def test_auth5_wrong_or_malformed_key_is_401_with_same_message(
    unchanged: Client, headers: dict[str, str]
) -> None:
    """AUTH-5: unknown and malformed keys get the same 401, never saying which case applied."""
    assert error(unchanged.get(f"{C}/plans", headers=headers), 401) == UNAUTHORIZED
    post = unchanged.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "x"},
                       headers=headers)  # fmt: skip
    assert error(post, 401) == UNAUTHORIZED


def test_auth2_either_header_alone_suffices(client: Client) -> None:
    """AUTH-2: `Authorization: Bearer` alone and `X-API-Key` alone both authenticate."""
    del client.headers["Authorization"]
    assert ok(client.get(f"{C}/plans", headers=bearer(KEY)))
    assert ok(client.get(f"{C}/plans", headers={"X-API-Key": KEY}))
    ok(client.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "via-x"},
                   headers={"X-API-Key": KEY}), 201)  # fmt: skip
    assert ok(client.get(f"{C}/customers/via-x", headers={"X-API-Key": KEY}))["email"] == (
        "jane@example.com"
    )


def test_auth3_bearer_wins_over_x_api_key(client: Client) -> None:
    """AUTH-3: with both headers the Bearer value decides, and X-API-Key is ignored."""
    del client.headers["Authorization"]
    wrong = "sk_test_" + "z" * 32
    both = {**bearer(wrong), "X-API-Key": KEY}
    assert error(client.get(f"{C}/plans", headers=both), 401) == UNAUTHORIZED
    assert ok(client.get(f"{C}/plans", headers={**bearer(KEY), "X-API-Key": wrong}))
    body = {**CUSTOMER, "customerReferenceId": "both"}
    read_only_wins = {**bearer(READ_ONLY_KEY), "X-API-Key": KEY}
    assert error(client.post(f"{C}/customers", json=body, headers=read_only_wins), 403) == FORBIDDEN
    full_wins = {**bearer(KEY), "X-API-Key": READ_ONLY_KEY}
    ok(client.post(f"{C}/customers", json=body, headers=full_wins), 201)
    live_wins = {**bearer(LIVE_KEY), "X-API-Key": KEY}
    assert error(client.get(f"{C}/customers/both", headers=live_wins), 404) == "Customer not found."


def test_auth7_authentication_runs_before_validation_and_lookup(client: Client) -> None:
    """AUTH-7: without a key, invalid bodies and unknown resources still get 401, never 400/404."""
    del client.headers["Authorization"]
    cases = [
        client.post(f"{C}/customers", content=b"{not json"),
        client.post(f"{C}/customers", json={}),
        client.get(f"{C}/customers/nobody"),
        client.post(f"{C}/billing/invoices/not-a-uuid/mark-paid"),
        client.post(f"{C}/billing/invoices/{NIL}/mark-paid"),
        client.post(f"{C}/events", json={"eventName": "x"}),
        client.get(f"{C}/credits/nobody/pools?expand=bogus"),
        client.post(f"{A}/clock/advance", json={}),
    ]
    for response in cases:
        assert error(response, 401) == UNAUTHORIZED


# -- 403 --------------------------------------------------------------------------------------


def test_auth6a_read_only_key_cannot_post(client: Client) -> None:
    """AUTH-6 (a): a read-only key gets 403 "Access denied." on every POST, and nothing changes."""
    data = paid_subscriber(client, "ro_owner", "pro_monthly")
    ro = bearer(READ_ONLY_KEY)
    pro = plan_id(client, "free")
    posts = [
        (f"{C}/customers", {**CUSTOMER, "customerReferenceId": "ro_new"}),
        (f"{C}/subscriptions", {"customerReferenceId": "ro_owner", "planId": pro}),
        (f"{C}/entitlements", {"customerReferenceId": "ro_owner", "featureKey": "api_calls"}),
        (f"{C}/events", {"eventName": "api_calls", "eventIdempotencyKey": "ro1",
                         "customerReferenceId": "ro_owner", "usageUnits": 5}),
        (f"{C}/billing/invoices/{data['invoice']['id']}/mark-paid", None),
        (f"{C}/billing/invoices/{data['invoice']['id']}/stripe/checkout", None),
        (f"{C}/customers", {"not": "valid"}),  # 403 comes before validation
    ]  # fmt: skip
    for path, body in posts:
        assert error(client.post(path, json=body, headers=ro), 403) == FORBIDDEN, path
    assert error(client.get(f"{C}/customers/ro_new"), 404) == "Customer not found."
    assert len(get_customer(client, "ro_owner")["subscriptions"]) == 1
    assert ok(client.get(f"{C}/entitlements/ro_owner/api_calls", headers=ro))["usage"]["used"] == 0
    # the event key was not consumed by the refused request
    assert event(client, "ro_owner", "ro1").status_code == 201


def test_auth6a_read_only_key_cannot_change_or_delete_subscriptions(client: Client) -> None:
    """AUTH-6 (a): the subscription POST and DELETE operations (4-7) are refused with 403 for
    a read-only key, and the subscription is unchanged."""
    sub = paid_subscriber(client, "ro_sub", "pro_monthly")["subscription"]
    ro = bearer(READ_ONLY_KEY)
    base = f"{C}/subscriptions"
    target = plan_id(client, "enterprise_monthly")
    calls = [
        client.post(f"{base}/cancellation/{sub['id']}?cancelMode=IMMEDIATE", headers=ro),
        client.delete(f"{base}/cancellation/{sub['id']}/scheduled", headers=ro),
        client.post(f"{base}/{sub['id']}/plan-change", headers=ro,
                    json={"changeToPlanId": target, "changeType": "UPGRADE"}),
        client.delete(f"{base}/{sub['id']}/plan-change/scheduled", headers=ro),
    ]  # fmt: skip
    for response in calls:
        assert error(response, 403) == FORBIDDEN
    (kept,) = get_customer(client, "ro_sub")["subscriptions"]
    assert (kept["id"], kept["isActive"], kept["plan"]["key"]) == (sub["id"], True, "pro_monthly")
    assert "cancelMode" not in kept


def test_auth6a_read_only_key_can_read(client: Client) -> None:
    """AUTH-6 (a): reads (GET) are allowed for a read-only key."""
    paid_subscriber(client, "reader", "pro_monthly")
    ro = bearer(READ_ONLY_KEY)
    assert ok(client.get(f"{C}/plans", headers=ro))
    assert ok(client.get(f"{C}/customers/reader", headers=ro))["externalClientCustomerId"] == (
        "reader"
    )
    assert ok(client.get(f"{C}/entitlements/reader/projects", headers=ro))["isAllowed"] is True
    assert len(ok(client.get(f"{C}/billing/invoices/reader", headers=ro))) == 1
    assert ok(client.get(f"{C}/credits/reader/pools", headers=ro))[0]["denomination"] == "TOKENS"


@pytest.mark.parametrize("key", [CLIENT_KEY, READ_ONLY_KEY])
def test_admin_routes_refuse_keys_without_admin_scope(client: Client, key: str) -> None:
    """AUTH-6, SCH-4: /api/v1/admin/* needs the admin scope; client keys get 403."""
    create_customer(client, "adm")
    headers = bearer(key)
    before = ok(client.get(f"{A}/clock"))["now"]
    cases = [
        client.get(f"{A}/catalog", headers=headers),
        client.put(f"{A}/catalog", json={"plans": [plan_doc("sneaky")]}, headers=headers),
        client.post(f"{A}/credits/grants", headers=headers,
                    json={"customerReferenceId": "adm", "denomination": "TOKENS", "amount": 5,
                          "source": "PURCHASE"}),
        client.get(f"{A}/clock", headers=headers),
        client.post(f"{A}/clock/advance", json={"seconds": 3600}, headers=headers),
    ]  # fmt: skip
    for response in cases:
        assert error(response, 403) == FORBIDDEN
    assert ok(client.get(f"{A}/clock"))["now"] == before
    assert "sneaky" not in [p["plan"]["key"] for p in ok(client.get(f"{C}/plans"))]
    assert "creditPools" not in get_customer(client, "adm")


def test_client_key_without_admin_can_use_the_client_api(client: Client) -> None:
    """AUTH-6: a key with client:read and client:write is a full Client API key."""
    headers = bearer(CLIENT_KEY)
    ok(client.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "ck"},
                   headers=headers), 201)  # fmt: skip
    free = plan_id(client, "free")
    ok(client.post(f"{C}/subscriptions", json={"customerReferenceId": "ck", "planId": free},
                   headers=headers), 201)  # fmt: skip
    ok(client.post(f"{C}/events", headers=headers,
                   json={"eventName": "api_calls", "customerReferenceId": "ck",
                         "eventIdempotencyKey": "ck1"}), 201)  # fmt: skip
    assert ok(client.get(f"{C}/entitlements/ck/api_calls", headers=headers))["usage"]["used"] == 1


@pytest.fixture
def observe_client(
    settings: Settings, system: ActorSystem, keys: KeyStore
) -> Iterator[TestClient[FastPath]]:
    app = create_app(msgspec.structs.replace(settings, account_mode="observe"), system, keys)
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        test_client.event_hooks["response"].append(check_envelope)
        yield test_client


def test_auth6b_observe_mode_allows_only_customers_and_events(observe_client: Client) -> None:
    """AUTH-6 (b): in Observe mode, Platform-only operations (3-10, 12-14, pools) get 403;
    customers and events keep working."""
    c = observe_client
    ok(c.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "obs"}), 201)
    assert ok(c.get(f"{C}/customers/obs"))["subscriptions"] == []
    ok(c.post(f"{C}/events", json={"eventName": "page_view", "customerReferenceId": "obs",
                                   "eventIdempotencyKey": "o1"}), 201)  # fmt: skip
    platform = [
        c.get(f"{C}/plans"),
        c.post(f"{C}/subscriptions", json={"customerReferenceId": "obs", "planId": NIL}),
        c.get(f"{C}/entitlements/obs/api_calls"),
        c.post(f"{C}/entitlements", json={"customerReferenceId": "obs", "featureKey": "x"}),
        c.get(f"{C}/billing/invoices/obs"),
        c.post(f"{C}/billing/invoices/{NIL}/mark-paid"),
        c.post(f"{C}/billing/invoices/{NIL}/stripe/checkout"),
        c.get(f"{C}/credits/obs/pools"),
        c.post(f"{C}/subscriptions/cancellation/{NIL}"),
        c.delete(f"{C}/subscriptions/cancellation/{NIL}/scheduled"),
        c.post(
            f"{C}/subscriptions/{NIL}/plan-change",
            json={"changeToPlanId": NIL, "changeType": "DOWNGRADE"},
        ),
        c.delete(f"{C}/subscriptions/{NIL}/plan-change/scheduled"),
    ]
    for response in platform:
        assert error(response, 403) == FORBIDDEN


# -- 404, 405 and the envelope ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"{C}/nope", f"{C}/customer", f"{C}/plans/extra/segments", "/api/v2/client/plans"]
)
def test_api11_unknown_route_is_404_in_the_envelope(unchanged: Client, path: str) -> None:
    """API-11: unknown routes -> 404 with the error envelope."""
    response = unchanged.get(path, headers=bearer(KEY))
    error(response, 404)
    assert set(response.json()) == {"success", "error"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", f"{C}/plans"),
        ("POST", f"{C}/plans"),
        ("PUT", f"{C}/customers/abc"),
        ("GET", f"{C}/events"),
        ("GET", f"{C}/billing/invoices/{NIL}/mark-paid"),
        ("DELETE", f"{A}/catalog"),
    ],
)
def test_api11_wrong_method_is_405_in_the_envelope(
    unchanged: Client, method: str, path: str
) -> None:
    """API-11: a known route with the wrong method -> 405 with the error envelope."""
    response = unchanged.request(method, path, headers=bearer(KEY))
    error(response, 405)
    assert response.json()["error"]["message"]


def test_api4_void_operations_return_exactly_success_true(client: Client) -> None:
    """API-4, CUS-4, INV-20: void successes are exactly {"success": true}."""
    response = client.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "v"})
    assert response.status_code == 201
    assert response.json() == {"success": True}
    sub = subscribe(client, "v", "pro_monthly")
    paid = client.post(f"{C}/billing/invoices/{sub['invoice']['id']}/mark-paid")
    assert paid.status_code == 200
    assert paid.json() == {"success": True}


def test_api5_error_has_message_and_no_data(client: Client) -> None:
    """API-5: failure -> success false, no data, error.message a string."""
    response = client.get(f"{C}/customers/missing")
    body = response.json()
    assert response.status_code == 404
    assert body["success"] is False
    assert "data" not in body
    assert body["error"]["message"] == "Customer not found."


def test_api6_no_null_anywhere_in_a_full_tour(client: Client) -> None:
    """API-6, checklist 2: no response body contains a JSON null at any depth; null and
    unknown fields are omitted; empty arrays are emitted."""
    put_catalog(
        client,
        plan_doc(
            "bare", description=None,
            features=[{"featureKey": "api_calls", "pricingType": "usage_based",
                       "pricePerUnit": 0.01}],
        ),
    )  # fmt: skip
    assert event(client, "ghost", "n1", eventName="api_calls").status_code == 201
    ghost = get_customer(client, "ghost")
    for absent in ("firstName", "lastName", "email", "creditPools"):
        assert absent not in ghost
    assert ghost["subscriptions"] == []
    ok(grant(client, "ghost", 5, denomination="MISC"), 201)
    create_customer(client, "tour")
    sub = subscribe(client, "tour", "bare")
    assert "description" not in sub["subscription"]["plan"]
    for absent in ("cancelMode", "cancelEffectiveAt", "cancelledAt", "scheduledChange"):
        assert absent not in sub["subscription"]
    bodies = [
        client.get(f"{C}/plans"),
        client.get(f"{C}/customers/ghost"),
        client.get(f"{C}/customers/tour"),
        client.get(f"{C}/credits/ghost/pools?expand=grants,transactions"),
        client.get(f"{C}/entitlements/tour/api_calls"),
        client.post(f"{C}/entitlements", json={"customerReferenceId": "tour",
                                               "featureKey": "api_calls", "track": {}}),
        client.get(f"{C}/billing/invoices/tour"),
        client.get(f"{A}/catalog"),
    ]  # fmt: skip
    for response in bodies:
        assert response.status_code == 200
        assert "null" not in response.text.replace('"null"', "")
        assert not find_nulls(response.json())
    check = bodies[4].json()["data"]
    assert "flowId" not in check and "meta" not in check
    assert check["usage"] == {"used": 0}  # unlimited: limit and remaining omitted


def test_api8_amounts_are_json_numbers(client: Client) -> None:
    """API-8: money and quantities are JSON numbers, never strings."""
    data = paid_subscriber(client, "nums", "pro_monthly")
    raw = json.loads(client.get(f"{C}/billing/invoices/nums").text)
    assert isinstance(raw["data"][0]["amount"], int | float)
    assert isinstance(data["subscription"]["plan"]["priceAmount"], int | float)
    pool = ok(client.get(f"{C}/credits/nums/pools"))[0]
    for field in ("balance", "totalGranted", "totalConsumed", "totalExpired", "totalReversed"):
        assert isinstance(pool[field], int | float), field


def test_api7_offsets_in_input_are_normalised_to_utc(client: Client) -> None:
    """API-7: an input timestamp with an offset is accepted; outputs are UTC with `Z`."""
    paid_subscriber(client, "tz", "free")
    response = event(client, "tz", "tz1", occurredAt="2025-01-15T12:00:00+02:00", usageUnits=3)
    assert response.status_code == 201
    assert ok(client.get(f"{C}/entitlements/tz/api_calls"))["usage"]["used"] == 3
    assert error(event(client, "tz", "tz2", occurredAt="2025-01-15T12:00:00"), 400)


def test_api10_validation_errors_name_the_field(client: Client) -> None:
    """API-10: 400 in the envelope, naming the offending field."""
    create_customer(client, "val")
    malformed = client.post(f"{C}/customers", content=b'{"firstName": ',
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert "json" in error(malformed, 400).lower()
    wrong_type = client.post(f"{C}/subscriptions",
                             json={"customerReferenceId": "val", "planId": 12})  # fmt: skip
    assert "planId" in error(wrong_type, 400)
    bad_enum = grant(client, "val", 5, source="GIFT")
    assert "source" in error(bad_enum, 400)
    bad_uuid = client.post(f"{C}/billing/invoices/12345/mark-paid")
    assert "invoiceId" in error(bad_uuid, 400)
    too_long = client.post(f"{C}/entitlements",
                           json={"customerReferenceId": "v" * 129, "featureKey": "x"})  # fmt: skip
    assert "customerReferenceId" in error(too_long, 400)
    missing = client.post(f"{C}/customers", json={"customerReferenceId": "z", "firstName": "a",
                                                  "lastName": "b"})  # fmt: skip
    assert "email" in error(missing, 400)


def test_api13_canonical_messages(client: Client) -> None:
    """API-13: the canonical texts for 401, 403, 404 and 409, and STR-1's 400."""
    assert error(client.get(f"{C}/plans", headers=bearer("nope")), 401) == UNAUTHORIZED
    create_customer(client, "canon")
    assert error(client.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "x"},
                             headers=bearer(READ_ONLY_KEY)), 403) == FORBIDDEN  # fmt: skip
    assert error(client.get(f"{C}/customers/none"), 404) == "Customer not found."
    assert error(client.post(f"{C}/subscriptions",
                             json={"customerReferenceId": "canon", "planId": NIL}), 404) == (
        "Plan not found."
    )  # fmt: skip
    assert error(client.post(f"{C}/billing/invoices/{NIL}/mark-paid"), 404) == "Invoice not found."
    assert event(client, "canon", "dup").status_code == 201
    assert error(event(client, "canon", "dup"), 409) == (
        "Duplicate event. An event with this idempotency key has already been processed."
    )
    assert error(client.post(f"{C}/billing/invoices/{NIL}/stripe/checkout"), 400) == (
        "Stripe is not enabled at the account."
    )


# -- environments ---------------------------------------------------------------------------


def test_auth4_api12_sandbox_and_live_see_disjoint_data(client: Client) -> None:
    """AUTH-4, API-12: a key's environment scopes every entity; the other environment's ids
    behave as not found, and event keys and catalogs are separate too."""
    live = bearer(LIVE_KEY)
    data = paid_subscriber(client, "shared_ref", "pro_monthly")
    assert error(client.get(f"{C}/customers/shared_ref", headers=live), 404) == (
        "Customer not found."
    )
    assert error(client.get(f"{C}/billing/invoices/shared_ref", headers=live), 404)
    assert error(client.get(f"{C}/credits/shared_ref/pools", headers=live), 404)
    invoice_id = data["invoice"]["id"]
    assert error(
        client.post(f"{C}/billing/invoices/{invoice_id}/mark-paid", headers=live), 404
    ) == ("Invoice not found.")
    customer_id = data["subscription"]["customer"]["id"]
    by_id = {"eventName": "api_calls", "customerId": customer_id, "eventIdempotencyKey": "x-env"}
    assert error(client.post(f"{C}/events", json=by_id, headers=live), 404) == (
        "Customer not found."
    )
    denied = ok(client.get(f"{C}/entitlements/shared_ref/projects", headers=live))
    assert denied["isAllowed"] is False
    assert denied["meta"]["reason"]["description"] == "Customer not found."
    # the same external id and event key are free in the live environment
    ok(client.post(f"{C}/customers", json={**CUSTOMER, "customerReferenceId": "shared_ref"},
                   headers=live), 201)  # fmt: skip
    assert ok(client.get(f"{C}/customers/shared_ref", headers=live))["subscriptions"] == []
    assert event(client, "shared_ref", "same-key").status_code == 201
    body = {"eventName": "api_calls", "customerReferenceId": "shared_ref",
            "eventIdempotencyKey": "same-key"}  # fmt: skip
    ok(client.post(f"{C}/events", json=body, headers=live), 201)
    assert error(client.post(f"{C}/events", json=body, headers=live), 409)
    # a catalog change in the sandbox is invisible in live
    put_catalog(client, plan_doc("sandbox_only"))
    assert "sandbox_only" in [p["plan"]["key"] for p in ok(client.get(f"{C}/plans"))]
    live_plans = ok(client.get(f"{C}/plans", headers=live))
    assert "sandbox_only" not in [p["plan"]["key"] for p in live_plans]
    # and the sandbox subscription is untouched by live activity
    assert len(get_customer(client, "shared_ref")["subscriptions"]) == 1


def test_health_is_public_and_enveloped(client: Client) -> None:
    """API-3: even the unauthenticated health endpoint answers in the envelope."""
    del client.headers["Authorization"]
    assert ok(client.get("/health")) == {"status": "ok"}  # OPS-K8: nothing but the status
