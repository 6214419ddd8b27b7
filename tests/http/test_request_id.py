"""The app's declared middleware runs on both paths, and the request id it adds (issue 11, item 4).

A request the fast path serves never reaches Litestar; one it leaves to Litestar does. Both
must pass through every middleware `create_app` declares: `RequestId` (the app's own) and, here,
a recording middleware a test adds through the same declaration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.enums import ScopeType
from litestar.testing import TestClient
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import C, paid_subscriber

_EVENT = {"eventName": "api_calls", "customerReferenceId": "acme", "featureKey": "api_calls"}
_GENERATED = re.compile(r"[0-9a-f]{32}")


class Recorder:
    """Test middleware: records (path, status) of every HTTP request that passes through it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(self, app: ASGIApp) -> ASGIApp:
        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return

            async def send_recorded(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.seen.append((scope["path"], message["status"]))
                await send(message)

            await app(scope, receive, send_recorded)

        return recording


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recorded_app(settings: Settings, keys: KeyStore, recorder: Recorder) -> FastPath:
    system = build_system(settings, ManualClock(START), persistent=False)
    return create_app(settings, system, keys, middleware=[recorder])


@pytest.fixture
def client(recorded_app: FastPath) -> Iterator[TestClient[FastPath]]:
    with TestClient(recorded_app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        paid_subscriber(test_client, "acme")
        yield test_client


def test_both_paths_pass_through_the_declared_middleware(
    client: TestClient[FastPath],
    recorded_app: FastPath,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check and a single event are served by the fast path (Litestar is not reached), the
    plan list by Litestar: the recorder sees all three and each response has its own id."""
    reached: list[str] = []
    litestar = recorded_app.litestar

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            reached.append(scope["path"])
        await litestar(scope, receive, send)

    monkeypatch.setattr(recorded_app, "litestar", counting)
    recorder.seen.clear()
    check = client.get(f"{C}/entitlements/acme/api_calls")
    event = client.post(f"{C}/events", json=_EVENT, headers={"X-Idempotency-Key": "r1"})
    plans = client.get(f"{C}/plans")
    assert reached == [f"{C}/plans"]  # only the plan list went to Litestar
    assert recorder.seen == [
        (f"{C}/entitlements/acme/api_calls", 200),
        (f"{C}/events", 201),
        (f"{C}/plans", 200),
    ]
    ids = [answer.headers["x-request-id"] for answer in (check, event, plans)]
    assert all(_GENERATED.fullmatch(request_id) for request_id in ids)
    assert len(set(ids)) == 3


def test_a_well_formed_request_id_is_echoed_on_both_paths(client: TestClient[FastPath]) -> None:
    for request_id in ("abc", "0190f3a4-7c1e-7d2b-9a4e-3b1f2c3d4e5f", "a:b/c+d=_~.", "x" * 128):
        headers = {"X-Request-Id": request_id}
        check = client.get(f"{C}/entitlements/acme/api_calls", headers=headers)
        plans = client.get(f"{C}/plans", headers=headers)
        assert check.headers["x-request-id"] == plans.headers["x-request-id"] == request_id


_MALFORMED = [b"", b"x" * 129, b"has space", b'quote"d', "caf\u00e9".encode(), b"tab\tx", b"a,b"]


@pytest.mark.parametrize(
    "headers",
    [[(b"x-request-id", value)] for value in _MALFORMED]
    + [[(b"x-request-id", b"a"), (b"x-request-id", b"b")]],  # which one would we echo?
)
def test_a_malformed_request_id_is_replaced(
    client: TestClient[FastPath], headers: list[tuple[bytes, bytes]]
) -> None:
    for url in (f"{C}/entitlements/acme/api_calls", f"{C}/plans"):  # fast path, Litestar
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200
        assert _GENERATED.fullmatch(answer.headers["x-request-id"])
        assert answer.headers.get_list("x-request-id") == [answer.headers["x-request-id"]]


def test_responses_litestar_gives_before_routing_carry_an_id(
    client: TestClient[FastPath], recorder: Recorder
) -> None:
    """A malformed Host (400), an unknown path (404), a missing key (401) and the OpenAPI
    document: Litestar middleware would not run for the first two; ours does."""
    recorder.seen.clear()
    answers: list[Any] = [
        client.get(f"{C}/entitlements/acme/api_calls", headers={"Host": "bad host"}),
        client.get("/no/such/path"),
        client.get(f"{C}/plans", headers={"Authorization": ""}),
        client.get("/schema/openapi.json"),
    ]
    assert [answer.status_code for answer in answers] == [400, 404, 401, 200]
    assert [status for _, status in recorder.seen] == [400, 404, 401, 200]
    assert all(_GENERATED.fullmatch(answer.headers["x-request-id"]) for answer in answers)
