"""The admin API for keys, scope-naming 403s and the status-only /health (issue 13, items 3
and 8; docs/deploy.md OPS-K1..OPS-K8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from allotment.cli import main
from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.system import ActorSystem
from tests.conftest import CLIENT_KEY, KEY, LIVE_KEY, READ_ONLY_KEY
from tests.http.helpers import A, C, Client, error, ok

CUSTOMER = {"customerReferenceId": "k1", "firstName": "A", "lastName": "B", "email": "a@b.co"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_created_through_the_api_serves_at_once_and_is_shown_once(client: Client) -> None:
    """OPS-K1, OPS-K2: the reply holds the key, the list never does; OPS-K3: no restart."""
    made = ok(client.post(f"{A}/keys", json={"name": "ci", "scopes": ["client:read"]}), 201)
    key = made["key"]
    assert key.startswith("sk_test_") and made["id"] == key[:16]
    assert (made["name"], made["scopes"], made["status"]) == ("ci", ["client:read"], "ACTIVE")
    assert ok(client.get(f"{C}/plans", headers=bearer(key)))
    listed = ok(client.get(f"{A}/keys"))
    (entry,) = [k for k in listed if k["name"] == "ci"]
    assert entry["id"] == made["id"] and "key" not in entry
    assert entry["lastUsedAt"] == entry["createdAt"] or entry["lastUsedAt"] > entry["createdAt"]
    assert key not in str(listed)


def test_a_key_revoked_through_the_api_gets_401_on_its_next_request(client: Client) -> None:
    """OPS-K3: a revoke applies to the very next request, by id or by name (AUTH-5: 401)."""
    first = ok(client.post(f"{A}/keys", json={"name": "one"}), 201)
    second = ok(client.post(f"{A}/keys", json={"name": "two"}), 201)
    assert first["scopes"] == ["client:read", "client:write", "admin"]  # every scope by default
    revoked = ok(client.delete(f"{A}/keys/{first['id']}"))
    assert revoked["status"] == "REVOKED" and "revokedAt" in revoked
    assert error(client.get(f"{C}/plans", headers=bearer(first["key"])), 401)
    ok(client.delete(f"{A}/keys/two"))
    assert error(client.get(f"{C}/plans", headers=bearer(second["key"])), 401)
    assert ok(client.delete(f"{A}/keys/{first['id']}"))["revokedAt"] == revoked["revokedAt"]
    assert error(client.delete(f"{A}/keys/nobody"), 404) == "API key not found."


def test_shared_names_need_an_id_and_environments_do_not_see_each_other(client: Client) -> None:
    """OPS-K2: a name two active keys share is refused (409, naming both ids); API-12: a live
    admin key neither lists nor revokes a sandbox key."""
    a = ok(client.post(f"{A}/keys", json={"name": "twin"}), 201)
    b = ok(client.post(f"{A}/keys", json={"name": "twin"}), 201)
    message = error(client.delete(f"{A}/keys/twin"), 409)
    assert a["id"] in message and b["id"] in message
    live = bearer(LIVE_KEY)
    assert ok(client.get(f"{A}/keys", headers=live)) == []
    assert error(client.delete(f"{A}/keys/{a['id']}", headers=live), 404)
    assert ok(client.post(f"{A}/keys", json={"name": "prod"}, headers=live), 201)["id"].startswith(
        "sk_live_"
    )


def test_bad_names_and_scopes_are_400_naming_the_field(client: Client) -> None:
    assert "'name'" in error(client.post(f"{A}/keys", json={"name": "a b"}), 400)
    assert "'name'" in error(client.post(f"{A}/keys", json={"name": ""}), 400)
    message = error(client.post(f"{A}/keys", json={"name": "x", "scopes": ["root"]}), 400)
    assert "'scopes[0]'" in message


@pytest.mark.parametrize(
    ("key", "method", "path", "scope"),
    [
        (READ_ONLY_KEY, "POST", f"{C}/customers", "client:write"),
        (READ_ONLY_KEY, "POST", f"{C}/events", "client:write"),  # the fast path's route
        (CLIENT_KEY, "GET", f"{A}/keys", "admin"),
        (CLIENT_KEY, "GET", f"{A}/statistics", "admin"),
    ],
)
def test_a_403_names_the_missing_scope(
    client: Client, key: str, method: str, path: str, scope: str
) -> None:
    """OPS-K6: the canonical message (API-13) and, in `detail`, the scope the key lacks."""
    response = client.request(method, path, json=CUSTOMER, headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "message": "Access denied.",
        "detail": f"This API key lacks the '{scope}' scope.",
    }


def test_health_shows_only_the_status_and_counts_need_an_admin_key(client: Client) -> None:
    """OPS-K8: /health is public and says nothing but the status; the figures are behind an
    admin key."""
    assert ok(client.post(f"{C}/customers", json=CUSTOMER), 201) is None
    assert ok(client.get("/health", headers={"Authorization": ""})) == {"status": "ok"}
    assert error(client.get(f"{A}/statistics", headers={"Authorization": ""}), 401)
    statistics = ok(client.get(f"{A}/statistics"))
    test = next(s for s in statistics["shards"] if s["environment"] == "test")
    assert test["customers"] == 1 and "now" in statistics


@pytest.fixture
def stored_client(settings: Settings, system: ActorSystem) -> Iterator[TestClient[FastPath]]:
    """An app whose keys live in `<data-dir>/api_keys.json`, as `allotment serve` has them."""
    store = KeyStore(settings.data_dir / "api_keys.json")
    store.add(KEY)
    with TestClient(create_app(settings, system, store), base_url="http://t.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client


def test_the_cli_and_the_server_share_the_store(
    stored_client: Client, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """OPS-K3: `allotment keys` writes through its own store (as another process does); the
    server's store sees each change on its next request, and the CLI sees the server's."""
    data_dir = str(settings.data_dir)
    assert main(["keys", "create", "--name", "cli", "--scopes", "client:read",
                 "--data-dir", data_dir]) == 0  # fmt: skip
    key = capsys.readouterr().out.strip()
    assert ok(stored_client.get(f"{C}/plans", headers=bearer(key)))
    made = ok(stored_client.post(f"{A}/keys", json={"name": "api"}), 201)
    assert main(["keys", "list", "--data-dir", data_dir]) == 0
    table = capsys.readouterr().out
    assert made["id"] in table and key[:16] in table and key not in table
    assert main(["keys", "revoke", key[:16], "--data-dir", data_dir]) == 0
    assert error(stored_client.get(f"{C}/plans", headers=bearer(key)), 401)
    assert main(["keys", "revoke", "nobody", "--data-dir", data_dir]) == 1
    assert "no key with id or name 'nobody'" in capsys.readouterr().err


def test_a_store_written_before_key_management_still_serves(tmp_path: Path) -> None:
    """Records without name, prefix or last use decode, are named by their digest, authenticate
    and can be revoked; the old world-readable file becomes the owner's alone (OPS-K7)."""
    key = "sk_test_" + "o" * 40
    digest = KeyStore().add(key).digest
    path = tmp_path / "api_keys.json"
    path.write_text(
        f'[{{"digest":"{digest}","environment":"test","scopes":["admin"],'
        '"hint":"sk_test_…oooo","created_at":"2026-01-01T00:00:00Z"}]'
    )
    path.chmod(0o644)
    store = KeyStore(path)
    assert store.authenticate(key) is not None
    (stored,) = store.stored()
    assert stored.key_id == f"sha256:{digest[:16]}"
    assert path.stat().st_mode & 0o777 == 0o600
    assert store.revoke(stored.key_id).revoked_at is not None
    assert store.authenticate(key) is None
