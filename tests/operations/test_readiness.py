"""Issue 13, item 2: /health/live and /health/ready, each with its reason (OPS-P9, OPS-P10).

Through HTTP against the app; the real server's side (ready as soon as it says it listens,
and a disk threshold from the environment) is in test_listening.py and test_env_config.py.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system, key_store
from tests.conftest import KEY
from tests.http.helpers import Client

A = "/api/v1/admin"


def _client(app: FastPath) -> TestClient[FastPath]:
    client = TestClient(app, base_url="http://testserver.local")
    client.headers["Authorization"] = f"Bearer {KEY}"
    return client


def test_live_and_ready_while_serving(client: Client, settings: Settings) -> None:
    """Every kind of system: in memory, on a journal, behind a mailbox, over Ray (SCL-40)."""
    del client.headers["Authorization"]  # both are public
    assert client.get("/health/live").json() == {
        "status": "alive",
        "reason": "the server process answers requests",
    }
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["reason"] in {
        "serving from memory (no data directory)",
        f"recovered; journal writable; disk space above {settings.disk_free_min_bytes >> 20} MB; "
        "analytics worker alive",
        "every shard actor answers; each keeps its own data directory, not checked from here",
    }


def test_a_failed_shard_makes_it_not_ready_with_the_reason(tmp_path: Path) -> None:
    """In memory there is no rebuild (fail stop), so the failure stays while we look."""
    settings = Settings(clock="manual", data_dir=tmp_path, api_keys=[KEY])
    system = build_system(settings, ManualClock(), persistent=False)
    with _client(create_app(settings, system, key_store(settings))) as client:
        assert client.get("/api/v1/client/plans").status_code == 200  # the test shard exists
        system.shard("test").fail("journal write failed: [Errno 28] No space left on device")
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"] == "5"
        assert ready.json() == {
            "status": "not ready",
            "reason": "test failed and waits to be rebuilt from disk: "
            "journal write failed: [Errno 28] No space left on device",
        }
        assert client.get("/health/live").status_code == 200  # alive: do not restart it


def test_a_failed_analytics_run_makes_it_not_ready_until_one_works(tmp_path: Path) -> None:
    """The analytics worker cannot swap its new database in (a directory is in the way):
    readiness names the failure, and the next run that works clears it."""
    settings = msgspec.structs.replace(
        Settings(clock="manual", data_dir=tmp_path, api_keys=[KEY]), durability="write"
    )
    system = build_system(settings, ManualClock())
    with _client(create_app(settings, system, key_store(settings))) as client:
        assert client.get("/api/v1/client/plans").status_code == 200
        blocker = tmp_path / "analytics.duckdb"
        blocker.mkdir()
        (blocker / "keep").write_text("")
        assert client.post(f"{A}/snapshots").status_code >= 500
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("the last analytics run failed: ")
        (blocker / "keep").unlink()
        blocker.rmdir()
        assert client.post(f"{A}/snapshots").status_code == 201
        assert client.get("/health/ready").status_code == 200
