"""createCustomer and getCustomer (CUS-1..CUS-14)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.http.helpers import (
    C,
    Client,
    advance,
    create_customer,
    error,
    event,
    get_customer,
    grant,
    ok,
    paid_subscriber,
    subscribe,
)

PROFILE = {"firstName": "Jane", "lastName": "Smith", "email": "jane@example.com"}


def post_customer(client: Client, **body: Any) -> Any:
    return client.post(f"{C}/customers", json=body)


def test_cus1_cus4_cus11_create_then_get(client: Client) -> None:
    """CUS-1, CUS-4, CUS-11, CUS-12, CUS-13, CUS-14: 201 with exactly {"success": true}; GET
    returns the profile, `subscriptions: []`, no `creditPools`, no internal id or source."""
    response = post_customer(client, externalClientCustomerId="cus_1", **PROFILE,
                             phoneNumber="+1 555 0100", address="1 Main St")  # fmt: skip
    assert response.status_code == 201
    assert response.json() == {"success": True}
    data = get_customer(client, "cus_1")
    assert set(data) == {"externalClientCustomerId", "firstName", "lastName", "email",
                         "createdAt", "modifiedAt", "subscriptions"}  # fmt: skip
    assert data["externalClientCustomerId"] == "cus_1"
    assert (data["firstName"], data["lastName"], data["email"]) == (
        "Jane", "Smith", "jane@example.com"
    )  # fmt: skip
    assert data["createdAt"] == data["modifiedAt"] == "2025-01-15T10:30:00Z"
    assert data["subscriptions"] == []


@pytest.mark.parametrize("missing", ["firstName", "lastName", "email"])
def test_cus1_required_profile_fields(client: Client, missing: str) -> None:
    """CUS-1: firstName, lastName and email are required; a missing one gives 400 naming it."""
    body = {**PROFILE, "externalClientCustomerId": "req"}
    del body[missing]
    assert missing in error(post_customer(client, **body), 400)
    assert error(client.get(f"{C}/customers/req"), 404) == "Customer not found."


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two words@example.com", "", "@x.io"])
def test_cus1_email_must_be_valid(client: Client, email: str) -> None:
    """CUS-1: `email` must be a syntactically valid address."""
    response = post_customer(client, **{**PROFILE, "email": email}, customerReferenceId="em")
    assert "email" in error(response, 400)


def test_cus1_optional_fields_have_types(client: Client) -> None:
    """CUS-1: phoneNumber and address are optional strings; other types are rejected."""
    ok(post_customer(client, **PROFILE, customerReferenceId="opt"), 201)
    bad = post_customer(client, **PROFILE, customerReferenceId="opt2", phoneNumber=5550100)
    assert "phoneNumber" in error(bad, 400)


def test_cus2_customer_reference_id_alias(client: Client) -> None:
    """CUS-2, checklist 4: the guide's body with only `customerReferenceId` is accepted."""
    ok(post_customer(client, customerReferenceId="user_456", **PROFILE), 201)
    assert get_customer(client, "user_456")["externalClientCustomerId"] == "user_456"


def test_cus2_both_aliases_with_the_same_value_are_accepted(client: Client) -> None:
    """CUS-2: both aliases present with the same value is one external id."""
    ok(post_customer(client, externalClientCustomerId="same", customerReferenceId="same",
                     **PROFILE), 201)  # fmt: skip
    assert get_customer(client, "same")["email"] == "jane@example.com"


def test_cus2_conflicting_aliases_are_rejected(client: Client) -> None:
    """CUS-2: both aliases with different values -> 400, and no customer is created."""
    response = post_customer(client, externalClientCustomerId="one", customerReferenceId="two",
                             **PROFILE)  # fmt: skip
    message = error(response, 400)
    assert "customerReferenceId" in message or "externalClientCustomerId" in message
    assert error(client.get(f"{C}/customers/one"), 404)
    assert error(client.get(f"{C}/customers/two"), 404)


def test_cus2_an_external_id_is_required(client: Client) -> None:
    """CUS-2: neither alias -> 400 naming the external id."""
    message = error(post_customer(client, **PROFILE), 400)
    assert "externalClientCustomerId" in message or "customerReferenceId" in message


@pytest.mark.parametrize("bad", ["", "x" * 256])
def test_cus3_external_id_length(client: Client, bad: str) -> None:
    """CUS-3: external ids are non-empty and at most 255 characters."""
    assert "externalClientCustomerId" in error(
        post_customer(client, externalClientCustomerId=bad, **PROFILE), 400
    )


def test_cus3_longest_external_id_is_accepted(client: Client) -> None:
    """CUS-3: exactly 255 characters is allowed."""
    ref = "y" * 255
    ok(post_customer(client, externalClientCustomerId=ref, **PROFILE), 201)
    assert get_customer(client, ref)["externalClientCustomerId"] == ref


def test_cus3_external_ids_are_case_sensitive(client: Client) -> None:
    """CUS-3: "Acme" and "acme" are different customers."""
    ok(post_customer(client, externalClientCustomerId="Acme", **PROFILE), 201)
    assert error(client.get(f"{C}/customers/acme"), 404) == "Customer not found."
    ok(post_customer(client, externalClientCustomerId="acme", **{**PROFILE, "firstName": "Lo"}),
       201)  # fmt: skip
    assert get_customer(client, "Acme")["firstName"] == "Jane"
    assert get_customer(client, "acme")["firstName"] == "Lo"


def test_cus10_external_id_with_reserved_characters_round_trips(client: Client) -> None:
    """CUS-10: lookup is by the external id exactly, percent-decoded from the path. Since
    OPS-K11 (issue 13) a new id keeps to letters, digits and `_ - . : @`, so a space or `+`
    is refused at creation; `:` and `@` still round-trip percent-encoded."""
    assert error(post_customer(client, externalClientCustomerId="jane doe+1", **PROFILE), 400)
    ref = "jane.doe:1@acme.io"
    ok(post_customer(client, externalClientCustomerId=ref, **PROFILE), 201)
    assert get_customer(client, quote(ref, safe=""))["externalClientCustomerId"] == ref


def test_cus5_duplicate_is_409_and_changes_nothing(client: Client) -> None:
    """CUS-5, checklist 3: a second create of an API customer -> 409, profile unchanged."""
    ok(post_customer(client, externalClientCustomerId="dup", **PROFILE), 201)
    advance(client, seconds=60)
    again = post_customer(client, externalClientCustomerId="dup",
                          **{**PROFILE, "email": "other@example.com"})  # fmt: skip
    assert error(again, 409) == "Customer already exists."
    via_alias = post_customer(client, customerReferenceId="dup", **PROFILE)
    assert error(via_alias, 409) == "Customer already exists."
    data = get_customer(client, "dup")
    assert data["email"] == "jane@example.com"
    assert data["modifiedAt"] == "2025-01-15T10:30:00Z"


def test_cus6_auto_created_customer_registered_later_keeps_id_and_data(client: Client) -> None:
    """CUS-6, EVT-12, checklist 5: an event auto-creates "u1"; registering "u1" later fills in
    the profile (201) and keeps the internal id, the pools and the event history."""
    assert event(client, "u1", "auto-1", eventName="page_view").status_code == 201
    auto = get_customer(client, "u1")
    assert "firstName" not in auto and "email" not in auto
    ok(grant(client, "u1", 25), 201)
    internal_id = get_customer(client, "u1")["creditPools"][0]["customerId"]
    advance(client, seconds=3600)
    ok(post_customer(client, customerReferenceId="u1", **PROFILE), 201)
    registered = get_customer(client, "u1")
    assert registered["firstName"] == "Jane"
    assert registered["email"] == "jane@example.com"
    assert registered["createdAt"] == auto["createdAt"] == "2025-01-15T10:30:00Z"
    assert registered["modifiedAt"] == "2025-01-15T11:30:00Z"
    assert [p["customerId"] for p in registered["creditPools"]] == [internal_id]
    assert registered["creditPools"][0]["balance"] == 25
    sub = subscribe(client, "u1", "free")
    assert sub["subscription"]["customer"]["id"] == internal_id
    by_id = client.post(f"{C}/events", json={"eventName": "api_calls", "customerId": internal_id,
                                             "eventIdempotencyKey": "auto-2"})  # fmt: skip
    assert by_id.status_code == 201
    assert ok(client.get(f"{C}/entitlements/u1/api_calls"))["usage"]["used"] == 1
    assert error(event(client, "u1", "auto-1"), 409)  # its first event is still on record
    again = post_customer(client, customerReferenceId="u1", **PROFILE)
    assert error(again, 409) == "Customer already exists."


def test_cus10_unknown_customer_is_404(client: Client) -> None:
    """CUS-10: 404 "Customer not found."."""
    assert error(client.get(f"{C}/customers/nobody"), 404) == "Customer not found."


def test_cus12_subscriptions_lists_live_ones_oldest_first(client: Client) -> None:
    """CUS-12: every live subscription, inactive ones included, oldest first, each with `plan`
    and without a nested `customer`."""
    create_customer(client, "multi")
    pending = subscribe(client, "multi", "pro_monthly")
    advance(client, seconds=3600)
    free = subscribe(client, "multi", "free")
    advance(client, seconds=3600)
    arrears = subscribe(client, "multi", "usage_monthly")
    subs = get_customer(client, "multi")["subscriptions"]
    assert [s["id"] for s in subs] == [
        pending["subscription"]["id"], free["subscription"]["id"], arrears["subscription"]["id"]
    ]  # fmt: skip
    assert [s["isActive"] for s in subs] == [False, True, True]
    assert [s["plan"]["key"] for s in subs] == ["pro_monthly", "free", "usage_monthly"]
    for sub in subs:
        assert "customer" not in sub
        assert "scheduledChange" not in sub


def test_cus13_credit_pools_listed_when_present(client: Client) -> None:
    """CUS-13: `creditPools` lists the customer's pools as CreditPoolDto."""
    paid_subscriber(client, "pooled", "pro_monthly")
    pools = get_customer(client, "pooled")["creditPools"]
    assert len(pools) == 1
    pool = pools[0]
    for field in ("id", "name", "denomination", "currency", "balance", "totalGranted",
                  "totalConsumed", "totalExpired", "totalReversed", "status", "rolloverPolicy",
                  "customerId", "createdAt", "modifiedAt"):  # fmt: skip
        assert field in pool, field
    assert pool["denomination"] == "TOKENS"
    assert pool["balance"] == 1_000_000


def test_cus14_internal_id_only_in_embedded_customer_dto(client: Client) -> None:
    """CUS-14: the internal id appears as `subscription.customer.id`, never in getCustomer."""
    create_customer(client, "ids")
    sub = subscribe(client, "ids", "free")["subscription"]
    customer = sub["customer"]
    assert customer["externalClientCustomerId"] == "ids"
    assert len(customer["id"]) == 36
    data = get_customer(client, "ids")
    assert "id" not in data and "source" not in data
    assert customer["id"] not in str(data)
