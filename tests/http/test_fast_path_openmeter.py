"""OM-138: the fast path answers OpenMeter's customer entitlement value and access exactly as
the Litestar routes do, and leaves every other request on those paths to it.

As tests/http/test_fast_path.py: two identical systems receive the same requests in lockstep,
one through the app (fast path in front), one through its Litestar app alone; status, headers
(a 405's Allow as a set) and body must match. Entitlements are created through the runtime
(the domain's `CreateEntitlement` and `IssueGrant` in the customer's turn).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from litestar.enums import ScopeType
from litestar.testing import TestClient
from litestar.types import Receive, Scope, Send

from allotment.config import Settings
from allotment.domain.om_commands import CreateEntitlement, IssueGrant, OpenMeterCommand
from allotment.domain.om_state import EntitlementKind
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.http.openmeter.om_targets import customer_target
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import KEY, READ_ONLY_KEY, START
from tests.http.helpers import event, paid_subscriber
from tests.http.test_fast_path import _same

Pair = tuple[TestClient[FastPath], TestClient[Any]]
V1 = "/api/v1/customers"


def om_command(
    client: TestClient[Any], system: ActorSystem, customer: str, command: OpenMeterCommand
) -> Any:
    """`command` as one turn of `customer`'s actor, on the app's own event loop."""
    shard = system.shard("test")

    def reply(_state: Any, answer: Any, _now: Any) -> Any:
        return answer

    return client.blocking_portal.call(shard.openmeter_turn, customer_target(customer), command,
                                       reply)  # fmt: skip


def seed(client: TestClient[Any], system: ActorSystem) -> None:
    """acme: a hard metered entitlement to api_calls (10 granted, 4 used) and a static one to
    storage_gb (features of the demo catalog); none to sso."""
    paid_subscriber(client, "acme")
    om_command(client, system, "acme", CreateEntitlement(feature_key="api_calls",
                                                 kind=EntitlementKind.METERED,
                                                 usage_period="MONTH"))  # fmt: skip
    om_command(client, system, "acme", IssueGrant(entitlement="api_calls", amount=Decimal(10),
                                          effective_at=START))  # fmt: skip
    om_command(client, system, "acme", CreateEntitlement(feature_key="storage_gb",
                                                 kind=EntitlementKind.STATIC,
                                                 config='{"tier": "gold"}'))  # fmt: skip
    assert event(client, "acme", "e1", usageUnits=4, featureKey="api_calls").status_code in (
        200,
        201,
    )


@pytest.fixture
def pair(settings: Settings, keys: KeyStore) -> Iterator[Pair]:
    systems = [build_system(settings, ManualClock(START), persistent=False) for _ in range(2)]
    apps = [create_app(settings, system, keys) for system in systems]
    with (
        TestClient(apps[0], base_url="http://testserver.local") as fast,
        TestClient(apps[1].without_fast_path, base_url="http://testserver.local") as slow,
    ):
        clients: tuple[TestClient[Any], TestClient[Any]] = (fast, slow)
        for client, system in zip(clients, systems, strict=True):
            client.headers["Authorization"] = f"Bearer {KEY}"
            client.headers["X-Request-Id"] = "differential-test"
            seed(client, system)
        yield fast, slow


def test_values_answer_as_litestar_does_om_138(pair: Pair) -> None:
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api_calls/value") == 200
    assert pair[0].get(f"{V1}/acme/entitlements/api_calls/value").json() == {
        "hasAccess": True,
        "balance": 6,
        "usage": 4,
        "overage": 0,
        "totalAvailableGrantAmount": 10,
    }
    assert _same(pair, "GET", f"{V1}/acme/entitlements/storage_gb/value") == 200
    assert _same(pair, "GET", f"{V1}/acme/entitlements/sso/value") == 404  # no entitlement
    assert _same(pair, "GET", f"{V1}/nobody/entitlements/api_calls/value") == 404
    assert _same(pair, "GET", f"{V1}/acme/entitlements/Not-A-Key/value") == 400
    assert _same(pair, "GET", f"{V1}/acme/entitlements/{'a' * 65}/value") == 400
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api%20calls/value") == 400


def test_access_answers_as_litestar_does_om_138(pair: Pair) -> None:
    """OM-134, OM-138: every feature's value in one body, the same bytes either way; what the
    fast path does not serve (a query, a trailing "/", another method, no such customer, a
    key without the scope) is Litestar's answer or the same one."""
    url = f"{V1}/acme/access"
    assert _same(pair, "GET", url) == 200
    assert set(pair[0].get(url).json()["entitlements"]) >= {"api_calls", "storage_gb"}
    assert pair[0].get(url).json()["entitlements"]["api_calls"]["balance"] == 6
    assert _same(pair, "GET", f"{V1}/nobody/access") == 404
    assert _same(pair, "GET", f"{url}?x=1") == 200
    assert _same(pair, "GET", f"{url}/") == 200
    assert _same(pair, "GET", f"{V1}//access") == 404
    assert _same(pair, "POST", url) == 405
    assert _same(pair, "GET", url, headers={"Authorization": "Bearer sk_test_wrong"}) == 401
    assert _same(pair, "GET", url, headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}) == 200


def test_requests_left_to_litestar_answer_the_same(pair: Pair) -> None:
    """A query, another shape of path, a method, or a key without client:read: Litestar's."""
    at = (START + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api_calls/value?time={at}") == 200
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api_calls/value?time=yesterday") == 400
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api_calls/value/") == 200
    assert _same(pair, "GET", f"{V1}/acme/entitlements/api_calls/value/x") == 404
    assert _same(pair, "GET", f"{V1}//entitlements/api_calls/value") == 404
    assert _same(pair, "GET", f"{V1}/acme/entitlements//value") == 404
    assert _same(pair, "GET", f"{V1}/acme/access") == 200
    assert _same(pair, "POST", f"{V1}/acme/entitlements/api_calls/value") == 405
    url = f"{V1}/acme/entitlements/api_calls/value"
    assert _same(pair, "GET", url, headers={"Authorization": "Bearer sk_test_wrong"}) == 401
    assert _same(pair, "GET", url, headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}) == 200
    assert _same(pair, "GET", url, headers={"Host": "bad host"}) == 400


def test_the_value_is_served_without_litestar_and_a_503_alike(
    settings: Settings, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OM-138: an authorised plain value never reaches Litestar; a shard being rebuilt is the
    same 503 problem (with Retry-After) either way."""
    system = build_system(settings, ManualClock(START), persistent=False)
    app = create_app(settings, system, keys)
    reached: list[str] = []
    litestar = app.litestar

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            reached.append(scope["path"])
        await litestar(scope, receive, send)

    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        seed(client, system)
        monkeypatch.setattr(app, "litestar", counting)
        url = f"{V1}/acme/entitlements/api_calls/value"
        assert client.get(url).json()["balance"] == 6
        assert client.get(f"{V1}/acme/access").json()["entitlements"]["api_calls"]["balance"] == 6
        assert reached == []
        shard = system.shard("test")

        async def failing(*_: Any) -> Any:
            raise ShardUnavailable("journal write failed: disk gone")

        monkeypatch.setattr(shard, "openmeter_turn", failing)
        fast = client.get(url)
        slow = client.get(f"{url}?unused=1")  # a query: Litestar serves it
        assert reached == [url]
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        assert fast.status_code == 503 and fast.headers["retry-after"] == "5"
        assert fast.headers["content-type"] == "application/problem+json"
