"""Reservations over HTTP (docs/reservations.md, RSV-*)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.http.helpers import C, Client, advance, check, error, event, ok, pool, shard_holding
from tests.http.reservation_helpers import holder, reserve, settle


def _state(client: Client, ref: str) -> Any:
    """Everything a client can see of a customer's holds and balances."""
    return (
        client.get(f"{C}/customers/{ref}/reservations").json(),
        client.get(f"{C}/credits/{ref}/pools").json(),
        check(client, ref, "api_calls"),
        check(client, ref, "ai_chat"),
    )


def test_rsv_1_rsv_5_reserve_read_and_repeat(client: Client) -> None:
    holder(client, "h1")
    held = ok(reserve(client, "h1", featureKey="ai_chat", units=75, reservationId="r1",
                      ttlSeconds=600, eventName="llm_call"), 201)  # fmt: skip
    assert held["status"] == "HELD" and held["isAllowed"] is True
    assert held["units"] == 75 and held["items"][0]["credits"] == 75
    assert held["expiresAt"] > held["createdAt"]
    assert held["entitlement"]["isAllowed"] is True
    again = ok(reserve(client, "h1", featureKey="ai_chat", units=75, reservationId="r1",
                       ttlSeconds=600, eventName="llm_call"), 200)  # fmt: skip
    assert again == held
    assert "different body" in error(
        reserve(client, "h1", featureKey="ai_chat", units=76, reservationId="r1"), 409
    )
    assert ok(client.get(f"{C}/reservations/r1")) == held


def test_rsv_8_rsv_9_held_units_show_everywhere(client: Client) -> None:
    holder(client, "h2", tokens=500)
    ok(reserve(client, "h2", featureKey="ai_chat", units=450, reservationId="big"), 201)
    ok(reserve(client, "h2", featureKey="api_calls", units=30, reservationId="calls"), 201)
    chat = check(client, "h2", "ai_chat")
    assert chat["credit"]["reserved"] == 450 and chat["credit"]["available"] == 50
    assert chat["credit"]["balance"] == 500
    calls = check(client, "h2", "api_calls")
    assert calls["usage"] == {"used": 0, "limit": 100, "remaining": 70, "reserved": 30}
    tokens = pool(client, "h2")
    assert (tokens["reserved"], tokens["available"], tokens["balance"]) == (450, 50, 500)
    denied = ok(reserve(client, "h2", featureKey="ai_chat", units=51, reservationId="no"), 200)
    assert denied["isAllowed"] is False and denied["status"] == "DENIED"
    assert denied["reason"] == "Requested usage would exceed the limit."
    assert error(client.get(f"{C}/reservations/no"), 404)


def test_rsv_12_commit_records_like_an_event_and_is_idempotent(client: Client) -> None:
    holder(client, "h3", tokens=500)
    ok(reserve(client, "h3", featureKey="ai_chat", units=100, reservationId="c1"), 201)
    first = ok(settle(client, "c1", "commit", usageUnits=80, eventIdempotencyKey="k-c1"))
    assert first["reservation"]["status"] == "COMMITTED" and first["holdExpired"] is False
    assert first["events"] == [{"featureKey": "ai_chat", "usageUnits": 80, "recordedUnits": 80,
                                "cutUnits": 0, "eventIdempotencyKey": "k-c1"}]  # fmt: skip
    assert pool(client, "h3")["balance"] == 420 and "reserved" not in pool(client, "h3")
    assert ok(settle(client, "c1", "commit", usageUnits=5)) == first  # RSV-15
    assert pool(client, "h3")["balance"] == 420
    duplicate = event(client, "h3", "k-c1", eventName="ai_chat", featureKey="ai_chat")
    assert duplicate.status_code == 409  # RSV-13: the commit's key is an event key


def test_rsv_14_cap_and_reject(client: Client) -> None:
    holder(client, "h4", tokens=500)
    ok(reserve(client, "h4", featureKey="ai_chat", units=100, reservationId="cap",
               overage="cap"), 201)  # fmt: skip
    capped = ok(settle(client, "cap", "commit", usageUnits=130))
    assert capped["events"][0]["recordedUnits"] == 100 and capped["events"][0]["cutUnits"] == 30
    ok(reserve(client, "h4", featureKey="ai_chat", units=100, reservationId="rej",
               overage="reject"), 201)  # fmt: skip
    before = _state(client, "h4")
    assert "usageUnits" in error(settle(client, "rej", "commit", usageUnits=101), 409)
    assert _state(client, "h4") == before
    assert ok(client.get(f"{C}/reservations/rej"))["status"] == "HELD"


def test_rsv_19_rsv_20_release_and_extend(client: Client) -> None:
    holder(client, "h5")
    ok(reserve(client, "h5", featureKey="ai_chat", units=10, reservationId="x", ttlSeconds=60),
       201)  # fmt: skip
    advance(client, seconds=30)
    extended = ok(settle(client, "x", "extend", ttlSeconds=86_400))
    created = datetime.fromisoformat(extended["createdAt"])
    assert datetime.fromisoformat(extended["expiresAt"]) == created + timedelta(days=1)
    released = ok(settle(client, "x", "release"))
    assert released["status"] == "RELEASED"
    assert ok(settle(client, "x", "release")) == released  # idempotent
    assert "HELD" in error(settle(client, "x", "extend", ttlSeconds=60), 409)
    assert ok(client.get(f"{C}/customers/h5/reservations?status=HELD")) == []
    assert len(ok(client.get(f"{C}/customers/h5/reservations?status=RELEASED"))) == 1


def test_rsv_23_expiry_by_the_clock_and_rsv_16_late_commit(client: Client) -> None:
    holder(client, "h6", tokens=500)
    ok(reserve(client, "h6", featureKey="ai_chat", units=100, reservationId="late",
               ttlSeconds=60), 201)  # fmt: skip
    advance(client, seconds=61)
    assert ok(client.get(f"{C}/reservations/late"))["status"] == "EXPIRED"
    assert "reserved" not in pool(client, "h6")
    late = ok(settle(client, "late", "commit", usageUnits=40))
    assert late["holdExpired"] is True
    assert pool(client, "h6")["balance"] == 460


def test_rsv_3_rsv_28_bad_input_is_a_named_4xx_and_changes_nothing(client: Client) -> None:
    holder(client, "h7")
    holder(client, "other")
    ok(reserve(client, "h7", featureKey="ai_chat", units=10, reservationId="mine"), 201)
    ok(reserve(client, "h7", featureKey="ai_chat", units=5, reservationId="gone"), 201)
    ok(settle(client, "gone", "release"))
    before = (_state(client, "h7"), _state(client, "other"))
    cases = [
        (reserve(client, "h7", featureKey="ai_chat", units=0), 400, "units"),
        (reserve(client, "h7", featureKey="ai_chat", units=-3), 400, "units"),
        (reserve(client, "h7", featureKey="nope", units=1), 400, "featureKey"),
        (reserve(client, "h7", featureKey="sso", units=1), 400, "featureKey"),
        (reserve(client, "h7", featureKey="ai_chat", units=1, ttlSeconds=0), 400, "ttlSeconds"),
        (reserve(client, "h7", featureKey="ai_chat", units=1, ttlSeconds=86_401), 400,
         "ttlSeconds"),
        (reserve(client, "other", featureKey="ai_chat", units=10, reservationId="mine"), 409,
         "reservationId"),
        (settle(client, "mine", "commit", usageUnits=1, customerReferenceId="other"), 404,
         "customerReferenceId"),
        (settle(client, "mine", "release", customerReferenceId="other"), 404,
         "customerReferenceId"),
        (settle(client, "mine", "commit", usageUnits=-1), 400, "usageUnits"),
        (settle(client, "gone", "commit", usageUnits=1), 409, "released"),
        (settle(client, "mine", "extend", ttlSeconds=0), 400, "ttlSeconds"),
        (client.get(f"{C}/customers/h7/reservations?status=NOPE"), 400, "status"),
    ]  # fmt: skip
    for response, status, named in cases:
        assert named in error(response, status), (named, response.text)
    assert (_state(client, "h7"), _state(client, "other")) == before


def test_rsv_4_several_items_all_or_none_and_commit_per_item(client: Client) -> None:
    holder(client, "h8", tokens=100)
    items = [{"featureKey": "ai_chat", "units": 60}, {"featureKey": "api_calls", "units": 10}]
    group = ok(reserve(client, "h8", items=items, reservationId="g"), 201)
    assert [i["status"] for i in group["items"]] == ["HELD", "HELD"] and "units" not in group
    too_much = [{"featureKey": "api_calls", "units": 1}, {"featureKey": "ai_chat", "units": 41}]
    denied = ok(reserve(client, "h8", items=too_much, reservationId="g2"), 200)
    assert [i["isAllowed"] for i in denied["items"]] == [True, False]
    assert check(client, "h8", "api_calls")["usage"]["reserved"] == 10  # g2 held nothing
    one = ok(settle(client, "g", "commit", featureKey="ai_chat", usageUnits=50))
    assert [i["status"] for i in one["reservation"]["items"]] == ["COMMITTED", "HELD"]
    assert "featureKey" in error(settle(client, "g", "commit", usageUnits=1), 400)
    rest = ok(settle(client, "g", "commit", items=[{"featureKey": "api_calls", "usageUnits": 7}]))
    assert rest["reservation"]["status"] == "COMMITTED"
    assert check(client, "h8", "api_calls")["usage"] == {"used": 7, "limit": 100, "remaining": 93}


def test_rsv_22_listing_needs_a_known_customer(client: Client) -> None:
    assert error(client.get(f"{C}/customers/ghost/reservations"), 404)
    assert error(reserve(client, "ghost", featureKey="ai_chat", units=1), 404)


def test_rsv_23_the_sweep_expires_holds_without_a_request(client: Client, system: Any) -> None:
    """RSV-23, SCH-1: moving the clock runs the shard's sweep, which expires the hold; the
    state shows it before any request of the customer runs a turn."""
    holder(client, "h9")
    ok(reserve(client, "h9", featureKey="ai_chat", units=10, reservationId="sw", ttlSeconds=30),
       201)  # fmt: skip
    shard = shard_holding(system, "h9")
    owner = shard.directory.reservation_owner("sw")
    assert owner is not None
    assert owner.state.next_due_at == datetime.fromisoformat(
        ok(client.get(f"{C}/reservations/sw"))["expiresAt"]
    )
    advance(client, seconds=31)
    assert owner.state.reservations["sw"].status.value == "EXPIRED"
    assert owner.state.held_credits == {}
