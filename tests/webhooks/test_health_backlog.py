"""WHK-D28a: the backlog cap is visible in `/health` to an admin key (and in `/metrics` and the
admin statistics, WHK-D28), while a stranger or a client key still sees only the status
(OPS-K8)."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from tests.conftest import CLIENT_KEY, KEY
from tests.http.helpers import A, create_customer, ok, subscribe
from tests.waiting import wait_until

# Nothing listens on the discard port: every attempt fails, and each message waits for its
# retry in 5 s of the manual clock, which the test never advances.
UNREACHABLE = "http://127.0.0.1:9/hooks"


def _health(client: TestClient[FastPath], key: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}" if key else ""}
    data: dict[str, Any] = ok(client.get("/health", headers=headers))
    return data


def test_an_admin_key_sees_each_endpoints_backlog_against_its_cap_in_health(
    hooked: TestClient[FastPath],
) -> None:
    endpoint = ok(hooked.post(f"{A}/webhooks", json={"url": UNREACHABLE}), 201)["id"]
    create_customer(hooked, "acme")
    subscribe(hooked, "acme", "free")  # subscription.activated, invoice.created, invoice.paid

    def backlog() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = _health(hooked, KEY)["webhooks"]
        return rows

    wait_until(lambda: backlog()[0]["backlog"] == 3, "the three messages, none delivered")
    (row,) = backlog()  # the same figures as the admin statistics (WHK-D28)
    assert (row["endpoint"], row["environment"], row["backlog_max"]) == (endpoint, "test", 10000)
    assert row == ok(hooked.get(f"{A}/statistics"))["webhooks"][0]
    assert row["enabled"] is True
    assert _health(hooked, None) == {"status": "ok"}  # OPS-K8: strangers see the status only
    assert _health(hooked, CLIENT_KEY) == {"status": "ok"}  # and so does a key without admin
    assert _health(hooked, "sk_test_" + "x" * 32) == {"status": "ok"}  # an unknown key too
