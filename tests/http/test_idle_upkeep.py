"""No idle work (issue 13, item 6): a scheduled checkpoint or analytics snapshot with nothing new
since the last one is skipped, leaves the files as they were, and is counted in `/metrics`
(OPS-M5, OPS-M6; docs/observability.md). The schedule's step is called directly; time moves
only by the manual clock. The app runs on the test client's event loop, so the direct calls
go through the client's portal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.runtime.upkeep import Upkeep
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import A, C

Client = TestClient[FastPath]
T = TypeVar("T")


def _system(data_dir: Path, clock: ManualClock) -> ActorSystem:
    return build_system(Settings(clock="manual", data_dir=data_dir, durability="write"), clock)


def _client(system: ActorSystem, data_dir: Path) -> Client:
    keys = KeyStore()
    keys.add(KEY)
    app = create_app(Settings(clock="manual", data_dir=data_dir), system, keys)
    client = TestClient(app, base_url="http://testserver.local")
    client.headers["Authorization"] = f"Bearer {KEY}"
    return client


def _counts(client: Client) -> dict[str, float]:
    """`allotment_checkpoints_total` and `allotment_analytics_runs_total` by result, as
    Prometheus reads them from `GET /metrics`."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "allotment_checkpoints_total":
                counts[f"checkpoint {sample.labels['result']}"] = sample.value
            elif sample.name == "allotment_analytics_runs_total":
                counts[f"analytics {sample.labels['result']}"] = sample.value
    return counts


def _call(client: Client, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`function(*args)` on the app's event loop, where the system runs."""
    return client.blocking_portal.call(function, *args)


def _files(directory: Path) -> dict[str, int]:
    """Every file under `directory` with its modification time: a rewrite changes it."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file()}  # fmt: skip


def _event(client: Client, key: str) -> None:
    event = {"eventName": "api_calls", "customerReferenceId": "acme",
             "featureKey": "api_calls", "eventIdempotencyKey": key}  # fmt: skip
    assert client.post(f"{C}/events", json=event).status_code == 201


def test_an_unchanged_checkpoint_is_skipped_and_counted(tmp_path: Path) -> None:
    """OPS-M5: skipped while the journal holds nothing new, also when the clock moves with
    nothing due; written again after one event; and after a restart that replays nothing."""
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    with _client(system, tmp_path) as client:
        _event(client, "e1")
        upkeep = system.upkeep
        assert isinstance(upkeep, Upkeep)
        assert _call(client, upkeep.checkpoint_if_changed, "test") is not None
        snapshots = _files(tmp_path / "snapshots")
        assert _call(client, upkeep.checkpoint_if_changed, "test") is None
        advanced = client.post(
            f"{A}/clock/advance", json={"to": (START + timedelta(hours=1)).isoformat()}
        )
        assert advanced.status_code == 200, advanced.text
        assert (client.get(f"{C}/entitlements/acme/api_calls")).status_code == 200
        assert _call(client, upkeep.checkpoint_if_changed, "test") is None  # reads journal nothing
        assert _files(tmp_path / "snapshots") == snapshots
        assert _counts(client) == {
            "checkpoint written": 1, "checkpoint skipped": 2, "checkpoint failed": 0,
            "analytics written": 0, "analytics skipped": 0, "analytics failed": 0,
        }  # fmt: skip
        _event(client, "e2")
        assert _call(client, upkeep.checkpoint_if_changed, "test") is not None
        assert (_counts(client))["checkpoint written"] == 2
    restarted = _system(tmp_path, clock)
    with _client(restarted, tmp_path) as client:
        assert restarted.upkeep is not None
        assert _call(client, restarted.upkeep.checkpoint_if_changed, "test") is None
        assert (_counts(client))["checkpoint skipped"] == 1


def test_an_unchanged_analytics_snapshot_is_skipped_and_counted(tmp_path: Path) -> None:
    """OPS-M6: skipped while no journal record and no audit record is new; a check (an audit
    record, no journal record) is something new; an explicit snapshot always runs."""
    clock = ManualClock(START)
    system = _system(tmp_path, clock)
    with _client(system, tmp_path) as client:
        _event(client, "e1")
        upkeep = system.upkeep
        assert isinstance(upkeep, Upkeep)
        assert _call(client, upkeep.snapshot_analytics_if_changed) is not None
        database = _files(tmp_path)["analytics.duckdb"]
        assert _call(client, upkeep.snapshot_analytics_if_changed) is None
        assert _files(tmp_path)["analytics.duckdb"] == database
        assert (_counts(client))["analytics skipped"] == 1
        assert (client.get(f"{C}/entitlements/acme/api_calls")).status_code == 200
        assert _call(client, upkeep.snapshot_analytics_if_changed) is not None  # the audit record
        assert _call(client, upkeep.snapshot_analytics_if_changed) is None
        _event(client, "e2")
        assert _call(client, upkeep.snapshot_analytics_if_changed) is not None
        assert (client.post(f"{A}/snapshots")).status_code == 201  # asked: it runs
        counts = _counts(client)
        assert (counts["analytics written"], counts["analytics skipped"]) == (4, 2)
