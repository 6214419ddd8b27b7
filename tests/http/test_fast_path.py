"""The fast path answers checkEntitlement, ingestEvent, createReservation and
commitReservation exactly as the Litestar routes do.

Two identical systems receive the same requests in lockstep, one through the app (fast path in
front) and one through its Litestar app alone; every status, header and body must match. The
cases cover each branch: served, failed inside the route (ENT-3 path length, EVT-1..EVT-10
validation, EVT-35 duplicates, 404s, over-limit 200s), and handed to Litestar (AUTH-5/AUTH-6,
oversized bodies, repeated headers, paths that are not the check).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.enums import ScopeType
from litestar.testing import TestClient
from litestar.types import Receive, Scope, Send

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import ShardUnavailable
from allotment.wiring import build_system
from tests.conftest import KEY, READ_ONLY_KEY, START
from tests.http.helpers import C, paid_subscriber

Pair = tuple[TestClient[Any], TestClient[Any]]
_EVENT = {"eventName": "api_calls", "customerReferenceId": "acme", "featureKey": "api_calls"}


@pytest.fixture
def pair(settings: Settings, keys: KeyStore) -> Iterator[Pair]:
    """(through the fast path, through Litestar only), over two identical systems, both inside
    the app's middleware. Each request carries one X-Request-Id, so the echoed header must
    match too (a generated one could not)."""
    apps = [
        create_app(settings, build_system(settings, ManualClock(START), persistent=False), keys)
        for _ in range(2)
    ]
    with (
        TestClient(apps[0], base_url="http://testserver.local") as fast,
        TestClient(apps[1].without_fast_path, base_url="http://testserver.local") as slow,
    ):
        for client in (fast, slow):
            client.headers["Authorization"] = f"Bearer {KEY}"
            client.headers["X-Request-Id"] = "differential-test"
            paid_subscriber(client, "acme")
        yield fast, slow


def _same(pair: Pair, method: str, url: str, **kwargs: Any) -> int:
    answers = [client.request(method, url, **kwargs) for client in pair]
    fast, slow = answers
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
    assert _comparable(fast.headers) == _comparable(slow.headers)
    return fast.status_code


def _comparable(headers: Any) -> dict[str, Any]:
    """Litestar builds a 405's Allow list from a set, so two apps may order the same methods
    differently; the list's order means nothing (RFC 9110 10.2.1), its members do."""
    found: dict[str, Any] = dict(headers)
    if "allow" in found:
        found["allow"] = sorted(method.strip() for method in found["allow"].split(","))
    return found


def test_checks_answer_as_litestar_does_ent_26(pair: Pair) -> None:
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls") == 200
    assert _same(pair, "GET", f"{C}/entitlements/acme/no_such_feature") == 200
    assert _same(pair, "GET", f"{C}/entitlements/nobody/api_calls") == 200  # ENT-5
    assert _same(pair, "GET", f"{C}/entitlements/acme/api%20calls") == 200
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls?x=1") == 200
    assert _same(pair, "GET", f"{C}/entitlements/{'a' * 256}/api_calls") == 400
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls/") == 200  # Litestar strips it
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls/extra") == 404
    assert _same(pair, "GET", f"{C}/entitlements/acme/") == 404
    assert _same(pair, "GET", f"{C}/entitlements//api_calls") == 404


def test_a_malformed_host_is_refused_on_both_paths(pair: Pair) -> None:
    """Litestar answers 400 before routing; the fast path must not serve (or record) it."""
    for host in ("bad host", "a/b", "x<y>"):
        headers = {"Host": host, "X-Idempotency-Key": f"h-{host}"}
        assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls", headers=headers) == 400
        assert _same(pair, "POST", f"{C}/events", json=_EVENT, headers=headers) == 400
    assert (
        _same(pair, "POST", f"{C}/events", json=_EVENT, headers={"X-Idempotency-Key": "h-bad host"})
        == 201
    )


def test_check_authentication_is_litestars_auth_5(pair: Pair) -> None:
    url = f"{C}/entitlements/acme/api_calls"
    assert _same(pair, "GET", url, headers={"Authorization": "Bearer sk_test_wrong"}) == 401
    assert _same(pair, "GET", url, headers={"Authorization": ""}) == 401
    assert _same(pair, "GET", url, headers={"Authorization": "", "X-API-Key": KEY}) == 200
    assert _same(pair, "GET", url, headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}) == 200


def test_events_answer_as_litestar_does_evt_35_evt_43(pair: Pair) -> None:
    url = f"{C}/events"
    assert _same(pair, "POST", url, json=_EVENT, headers={"X-Idempotency-Key": "e1"}) == 201
    assert _same(pair, "POST", url, json=_EVENT, headers={"X-Idempotency-Key": "e1"}) == 409
    assert _same(pair, "POST", url, json={**_EVENT, "eventIdempotencyKey": "e2"}) == 201
    big = {**_EVENT, "usageUnits": 10**6, "eventIdempotencyKey": "e3"}
    assert _same(pair, "POST", url, json=big) == 200  # EVT-43: over the limit, still recorded
    nobody = {**_EVENT, "customerReferenceId": "nobody", "eventIdempotencyKey": "e4"}
    assert _same(pair, "POST", url, json=nobody) == 201  # EVT-12: created on first event
    unknown_id = {**_EVENT, "customerReferenceId": None, "eventIdempotencyKey": "e5"}
    unknown_id["customerId"] = "00000000-0000-0000-0000-000000000000"
    assert _same(pair, "POST", url, json=unknown_id) == 404  # EVT-11
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls") == 200


def test_invalid_events_answer_as_litestar_does_evt_1_evt_10(pair: Pair) -> None:
    url = f"{C}/events"
    assert _same(pair, "POST", url, json=_EVENT) == 400  # no idempotency key
    malformed = {"X-Idempotency-Key": "x", "content-type": "application/json"}
    assert _same(pair, "POST", url, content=b"{not json", headers=malformed) == 400
    quoted = {**_EVENT, "usageUnits": "5", "eventIdempotencyKey": "q"}
    assert _same(pair, "POST", url, json=quoted) == 400
    negative = {**_EVENT, "usageUnits": -1, "eventIdempotencyKey": "n"}
    assert _same(pair, "POST", url, json=negative) == 400
    assert _same(pair, "POST", url, content=b"") == 400
    long_key = {"X-Idempotency-Key": "k" * 256}
    assert _same(pair, "POST", url, json=_EVENT, headers=long_key) == 400


def test_events_left_to_litestar_answer_the_same_auth_6(pair: Pair, settings: Settings) -> None:
    url = f"{C}/events"
    read_only = {"Authorization": f"Bearer {READ_ONLY_KEY}", "X-Idempotency-Key": "r"}
    assert _same(pair, "POST", url, json=_EVENT, headers=read_only) == 403
    assert _same(pair, "POST", url, json=_EVENT, headers={"Authorization": ""}) == 401
    oversized = b'{"eventName": "' + b"x" * settings.request_body_size_max + b'"}'
    assert _same(pair, "POST", url, content=oversized, headers={"X-Idempotency-Key": "o"}) == 413
    repeated = [("X-Idempotency-Key", "a"), ("X-Idempotency-Key", "b")]
    status = _same(pair, "POST", url, json=_EVENT, headers=repeated)
    assert status in (201, 400)
    assert _same(pair, "POST", f"{C}/events/", json={**_EVENT, "eventIdempotencyKey": "s"}) in (
        201,
        404,
    )


def test_the_fast_path_serves_without_litestar(
    settings: Settings, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authorised, well-formed checks and events never reach the Litestar app."""
    app = create_app(settings, build_system(settings, ManualClock(START), persistent=False), keys)
    reached: list[str] = []
    litestar = app.litestar

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            reached.append(scope["path"])
        await litestar(scope, receive, send)

    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        paid_subscriber(client, "acme")
        monkeypatch.setattr(app, "litestar", counting)
        assert client.get(f"{C}/entitlements/acme/api_calls").status_code == 200
        assert client.get(f"{C}/entitlements/{'a' * 300}/x").status_code == 400
        sent = client.post(f"{C}/events", json=_EVENT, headers={"X-Idempotency-Key": "f"})
        assert sent.status_code == 201
        assert client.post(f"{C}/events", json=_EVENT).status_code == 400
        assert reached == []
        assert client.get(f"{C}/plans").status_code == 200
        assert reached == [f"{C}/plans"]


def test_a_journal_failure_is_a_503_on_the_fast_path(
    settings: Settings, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that cannot be made durable is refused as Litestar's handler refuses it."""
    app = create_app(settings, build_system(settings, ManualClock(START), persistent=False), keys)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        paid_subscriber(client, "acme")
        shard = app.litestar.state["system"].shard("test")

        async def failing(*_: Any) -> Any:
            raise ShardUnavailable("journal write failed: disk gone")

        monkeypatch.setattr(shard, "ingest", failing)
        answer = client.post(f"{C}/events", json=_EVENT, headers={"X-Idempotency-Key": "j"})
        assert answer.status_code == 503
        assert answer.json() == {
            "success": False,
            "error": {
                "message": "Service unavailable: the server is recovering its state from "
                "disk; retry later.",
                "detail": "journal write failed: disk gone",
            },
        }
        assert answer.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
     "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"],
)  # fmt: skip
def test_events_by_content_type_answer_as_litestar_does_ops_k9(
    pair: Pair, content_type: str | None
) -> None:
    """OPS-K9: a body that is not JSON gets the route's 415 on both paths; JSON types with
    parameters or a +json suffix are served."""
    body = msgspec.json.encode({**_EVENT, "eventIdempotencyKey": f"ct-{content_type}"})
    headers = {"content-type": content_type} if content_type else {}
    status = _same(pair, "POST", f"{C}/events", content=body, headers=headers)
    assert status == (201 if content_type and "json" in content_type.lower() else 415)


_HOLD = {"customerReferenceId": "acme", "featureKey": "api_calls", "units": 2}


def test_reservations_answer_as_litestar_does_rsv_1_rsv_5_rsv_12_rsv_15(pair: Pair) -> None:
    """A reserve and its commit, served and failed, answer alike on both paths."""
    url = f"{C}/reservations"
    assert _same(pair, "POST", url, json={**_HOLD, "reservationId": "r1"}) == 201
    assert _same(pair, "POST", url, json={**_HOLD, "reservationId": "r1"}) == 200  # RSV-1
    assert _same(pair, "POST", url, json={**_HOLD, "reservationId": "r1", "units": 3}) == 409
    denied = {**_HOLD, "reservationId": "r-big", "units": 10**9}
    assert _same(pair, "POST", url, json=denied) == 200  # RSV-5: nothing held
    nobody = {**_HOLD, "reservationId": "r-nobody", "customerReferenceId": "nobody"}
    assert _same(pair, "POST", url, json=nobody) == 404
    for bad in ({"units": 0}, {"ttlSeconds": 0}, {"featureKey": "no_such"}, {"units": "2"}):
        assert _same(pair, "POST", url, json={**_HOLD, "reservationId": "r-bad", **bad}) == 400
    assert _same(pair, "POST", f"{url}/r1/commit", json={"usageUnits": 1}) == 200  # RSV-12
    assert _same(pair, "POST", f"{url}/r1/commit", json={"usageUnits": 1}) == 200  # RSV-15
    assert _same(pair, "POST", f"{url}/nothing/commit", json={"usageUnits": 1}) == 404
    assert _same(pair, "POST", f"{url}/{'i' * 129}/commit", json={"usageUnits": 1}) == 400
    capped = {**_HOLD, "reservationId": "r2", "overage": "reject"}
    assert _same(pair, "POST", url, json=capped) == 201
    assert _same(pair, "POST", f"{url}/r2/commit", json={"usageUnits": 5}) == 409  # RSV-14
    assert _same(pair, "POST", f"{url}/r2/commit", json={"usageUnits": -1}) == 400
    with_cost = {"usageUnits": 2, "costInput": {"model": "m", "inputTokens": 5}, "meta": {"a": 1}}
    assert _same(pair, "POST", f"{url}/r2/commit", json=with_cost) == 200
    assert _same(pair, "GET", f"{C}/entitlements/acme/api_calls") == 200


def test_reservations_left_to_litestar_answer_the_same_auth_5_ops_k9(pair: Pair) -> None:
    """What the fast path does not serve goes to Litestar: wrong keys, bodies that may not be
    JSON, paths its routes do not match, and the other reservation routes."""
    url = f"{C}/reservations"
    body = {**_HOLD, "reservationId": "l1"}
    read_only = {"Authorization": f"Bearer {READ_ONLY_KEY}"}
    assert _same(pair, "POST", url, json=body, headers=read_only) == 403
    assert _same(pair, "POST", url, json=body, headers={"Authorization": ""}) == 401
    encoded = msgspec.json.encode(body)
    assert _same(pair, "POST", url, content=encoded, headers={"content-type": "text/plain"}) == 415
    assert _same(pair, "POST", url, content=encoded) == 415
    assert _same(pair, "POST", f"{url}/", json=body) == 201  # Litestar strips the "/"
    assert _same(pair, "POST", f"{url}/l1/commit/", json={"usageUnits": 1}) == 200
    assert _same(pair, "POST", f"{url}/a/b/commit", json={"usageUnits": 1}) == 404
    assert _same(pair, "POST", f"{url}/commit", json={"usageUnits": 1}) == 405
    assert _same(pair, "POST", f"{url}/l1/release") == 409  # committed (RSV-19)


def test_reserve_and_commit_are_served_without_litestar(
    settings: Settings, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authorised, well-formed reserve and its commit never reach the Litestar app."""
    app = create_app(settings, build_system(settings, ManualClock(START), persistent=False), keys)
    reached: list[str] = []
    litestar = app.litestar

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            reached.append(scope["path"])
        await litestar(scope, receive, send)

    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        paid_subscriber(client, "acme")
        monkeypatch.setattr(app, "litestar", counting)
        held = client.post(f"{C}/reservations", json={**_HOLD, "reservationId": "f1"})
        assert held.status_code == 201, held.text
        committed = client.post(f"{C}/reservations/f1/commit", json={"usageUnits": 1})
        assert committed.status_code == 200, committed.text
        assert reached == []


def test_repeated_checks_answer_as_litestar_does_after_every_change_ent_26(pair: Pair) -> None:
    """A repeated check answers the bytes made for the decision the actor remembered
    (http/check_answers.py); an event, or another customer's or feature's check in between,
    must never leave a stale answer on either path."""
    fast, _ = pair
    url = f"{C}/entitlements/acme/api_calls"
    used = []
    for step in range(3):
        for _ in range(2):
            assert _same(pair, "GET", url) == 200
            assert _same(pair, "GET", f"{C}/entitlements/acme/ai_chat") == 200
        used.append(fast.get(url).json()["data"]["usage"]["used"])
        headers = {"X-Idempotency-Key": f"repeat-{step}"}
        assert _same(pair, "POST", f"{C}/events", json={**_EVENT, "usageUnits": 2},
                     headers=headers) == 201  # fmt: skip
    assert used == [0, 2, 4]
