"""Key management against a running `allotment serve`, with the real CLI in another process
(issue 13, item 3; docs/deploy.md OPS-K1..OPS-K7).

Before: a key from `allotment keys create` got 401 until the server restarted, there was no
`keys list` or `keys revoke`, and `api_keys.json` was world-readable.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.server import KEY, Server
from tests.waiting import wait_until

C = "/api/v1/client"
A = "/api/v1/admin"
CUSTOMER = {"customerReferenceId": "k1", "firstName": "A", "lastName": "B", "email": "a@b.co"}


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`allotment keys ...` in its own process, run to its end."""
    command = [sys.executable, "-m", "allotment", "keys", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _serve(data_dir: Path) -> Iterator[Server]:
    running = Server(data_dir, "--checkpoint-every", "0.5")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that the tests which only make, use and revoke keys of their own names
    share: none sees another's key (each looks its name up), nor needs a server without
    them."""
    yield from _serve(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server for a test that stops it and reads every file it wrote."""
    yield from _serve(tmp_path)


def test_keys_made_and_revoked_by_the_cli_apply_to_the_next_request(server: Server) -> None:
    """OPS-K3: no restart; a create is served by the first request after the CLI returns and
    a revoke is refused (401) by the first request after it returns. OPS-K6: a 403 names the
    scope. OPS-K1, OPS-K5: the list shows names, scopes and last use, never a key."""
    created = keys(server.data_dir, "create", "--name", "reader", "--scopes", "client:read")
    assert created.returncode == 0, created.stderr
    reader = created.stdout.strip()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get(f"{C}/plans", headers=bearer(reader)).status_code == 200
        refused = client.post(f"{C}/customers", json=CUSTOMER, headers=bearer(reader))
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "message": "Access denied.",
            "detail": "This API key lacks the 'client:write' scope.",
        }
        listed = client.get(f"{A}/keys", headers=bearer(KEY)).json()["data"]
        (entry,) = [k for k in listed if k["name"] == "reader"]
        assert entry["id"] == reader[:16]
        assert entry["scopes"] == ["client:read"] and entry["status"] == "ACTIVE"
        assert "lastUsedAt" in entry  # the list records uses up to now
        assert reader not in str(listed)

        revoked = keys(server.data_dir, "revoke", "reader")
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == f"allotment: revoked key {reader[:16]} (reader)"
        assert client.get(f"{C}/plans", headers=bearer(reader)).status_code == 401
        assert client.get(f"{C}/plans", headers=bearer(KEY)).status_code == 200

    table = keys(server.data_dir, "list")
    assert table.returncode == 0, table.stderr
    (row,) = [line for line in table.stdout.splitlines() if " reader " in line]
    assert row.startswith(reader[:16]) and "client:read" in row and "revoked" in row
    assert "never" not in row  # its last use reached the file
    assert reader not in table.stdout


def test_the_lost_first_key_is_recreated_with_one_command(server: Server) -> None:
    """OPS-K4: `allotment keys create --name default --scopes all` prints a key with every
    scope, which the running server takes at once."""
    created = keys(server.data_dir, "create", "--name", "default", "--scopes", "all")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    with httpx.Client(base_url=server.url, timeout=30, headers=bearer(key)) as client:
        assert client.post(f"{C}/customers", json=CUSTOMER).status_code == 201
        assert client.get(f"{A}/statistics").status_code == 200


def _wait_for(path: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` under `path`, once there is one."""
    return wait_until(lambda: sorted(path.glob(pattern)), f"{pattern} under {path}")


def test_key_and_state_files_are_the_owners_alone(own_server: Server) -> None:
    """OPS-K7: keys, journal, checkpoints and analytics are created 0600, whatever the umask."""
    assert keys(own_server.data_dir, "create", "--name", "ci").returncode == 0
    with httpx.Client(base_url=own_server.url, timeout=60, headers=bearer(KEY)) as client:
        assert client.post(f"{C}/customers", json=CUSTOMER).status_code == 201
        assert client.post(f"{A}/snapshots").status_code == 201  # analytics and history
    _wait_for(own_server.data_dir, "snapshots/**/*.snap")  # the checkpoint runs every 0.5 s
    own_server.stop()
    files = [
        path
        for path in own_server.data_dir.rglob("*")
        if path.is_file() and not path.name.startswith("server-")  # the test's own log
    ]
    names = {path.name for path in files}
    assert {"api_keys.json", "api_keys.lock", "allotment.lock", "analytics.duckdb"} <= names
    assert any(path.suffix == ".wal" for path in files) and any(p.suffix == ".snap" for p in files)
    assert any(path.suffix == ".parquet" for path in files)
    wider = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.stat().st_mode & 0o077}
    assert not wider
