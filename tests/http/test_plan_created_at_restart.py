"""PLN-3 across real restarts on a file journal (issue 12 item 7, MNY-C5): a plan from the
catalog file keeps the `createdAt` it was first recorded with, so the list order and the
`createdAt` inside subscriptions and invoices are the same after every start."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from allotment.config import DEFAULT_CATALOG, Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import A, C, create_customer, subscribe

EXTRA_PLAN = """
[[plans]]
key = "team_monthly"
name = "Team"
priceAmount = 99
currency = "USD"
intervalMonths = 1
billingTiming = "IN_ADVANCE"
"""

_SYSTEMS: list[ActorSystem] = []  # the running start's system, for `_checkpoint`


@contextmanager
def _server(data_dir: Path, catalog: Path, days: int) -> Iterator[TestClient[FastPath]]:
    """One start of a server on `data_dir` whose clock reads START + `days` days; its data
    directory is released when the block ends, as at a process exit."""
    settings = Settings(clock="manual", data_dir=data_dir, durability="write", catalog_path=catalog)
    keys = KeyStore()
    keys.add(KEY)
    system = build_system(settings, ManualClock(START + timedelta(days=days)))
    _SYSTEMS.append(system)
    with TestClient(
        create_app(settings, system, keys), base_url="http://testserver.local"
    ) as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client
    _SYSTEMS.clear()
    del client, system
    gc.collect()  # drops the system, which releases the data directory's lock


def _checkpoint(client: TestClient[FastPath]) -> None:
    """A state snapshot now, on the app's own event loop."""
    system = _SYSTEMS[-1]
    assert system.storage is not None
    client.blocking_portal.call(system.storage.checkpoint, "test", system.shard("test"))


def _seen(client: TestClient[FastPath]) -> dict[str, Any]:
    catalog = client.get(f"{A}/catalog").json()["data"]
    return {
        "order": [p["plan"]["key"] for p in client.get(f"{C}/plans").json()["data"]],
        "created": {p["key"]: p["createdAt"] for p in catalog["plans"]},
        "invoices": client.get(f"{C}/billing/invoices/keeper").json()["data"],
    }


def test_pln3_created_at_survives_restarts_with_and_without_a_snapshot(tmp_path: Path) -> None:
    """PLN-3, MNY-C5: journal only, then after a checkpoint; a plan added to the file later is
    recorded at the start that first sees it and keeps that time afterwards."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(DEFAULT_CATALOG.read_text())
    data = tmp_path / "data"
    with _server(data, catalog, days=0) as client:
        create_customer(client, "keeper")
        subscribe(client, "keeper", "pro_monthly", gracePeriod=10)  # DUE at every start
        first = _seen(client)
    assert first["invoices"][0]["subscription"]["plan"]["createdAt"] == "2025-01-15T10:30:00Z"
    with _server(data, catalog, days=1) as client:  # journal only: no snapshot yet
        assert _seen(client) == first
    catalog.write_text(DEFAULT_CATALOG.read_text() + EXTRA_PLAN)
    with _server(data, catalog, days=2) as client:
        second = _seen(client)
        assert second["created"].pop("team_monthly") == "2025-01-17T10:30:00Z"
        assert second["order"].pop() == "team_monthly"  # the newest plan lists last (PLN-3)
        assert second == first
        checkpoint = client.post(f"{A}/snapshots")  # the analytics snapshot is not one ...
        assert checkpoint.status_code == 201
        _checkpoint(client)  # ... this is: the next start begins from a state snapshot
    with _server(data, catalog, days=3) as client:  # from the snapshot and its tail
        third = _seen(client)
        assert third["created"]["team_monthly"] == "2025-01-17T10:30:00Z"
        assert third["order"].pop() == "team_monthly"
        third["created"].pop("team_monthly")
        assert third == first
