"""Analytics with data in both environments (issue 12 item 5, MNY-C1): the ready-made views
count each row once, in its own environment, through the public API (sandbox and live keys,
then `POST /api/v1/admin/snapshots`)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, LIVE_KEY
from tests.http.helpers import A, create_customer, event, subscribe


@pytest.fixture
def durable_client(
    tmp_path: Path, clock: ManualClock, keys: KeyStore
) -> Iterator[TestClient[FastPath]]:
    """An app on a data directory: analytics snapshots need one."""
    settings = Settings(clock="manual", data_dir=tmp_path, durability="write")
    app = create_app(settings, build_system(settings, clock), keys)
    with TestClient(app, base_url="http://testserver.local") as client:
        yield client


def _as(client: TestClient[FastPath], key: str) -> TestClient[FastPath]:
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_views_count_each_row_once_with_both_environments(
    durable_client: TestClient[FastPath], tmp_path: Path
) -> None:
    """MNY-C1 (issue 12 item 5): one DUE $49 invoice per environment is one receivable row in
    each, 49.00 each, not two rows and 98.00 each. The other views are checked alike."""
    for key, ref in ((KEY, "sandbox-buyer"), (LIVE_KEY, "live-buyer")):
        client = _as(durable_client, key)
        create_customer(client, ref)
        assert subscribe(client, ref, "pro_monthly")["invoice"]["status"] == "DUE"
        for i in range(3):
            response = event(client, ref, f"{ref}-{i}", featureKey="api_calls", usageUnits=2)
            assert response.status_code == 201, response.text
    snapshot = _as(durable_client, KEY).post(f"{A}/snapshots")
    assert snapshot.status_code == 201, snapshot.text
    receivable = _query(
        tmp_path,
        "SELECT environment, external_id, amount, days_past_due FROM accounts_receivable "
        "ORDER BY environment",
    )
    assert receivable == [
        ("live", "live-buyer", Decimal("49.000000000000"), 0),
        ("test", "sandbox-buyer", Decimal("49.000000000000"), 0),
    ]
    margin = _query(
        tmp_path,
        "SELECT environment, external_id, events, usage_units "
        "FROM margin_by_customer_feature_model ORDER BY environment",
    )
    assert margin == [
        ("live", "live-buyer", 3, Decimal("6.000000000000")),
        ("test", "sandbox-buyer", 3, Decimal("6.000000000000")),
    ]
    daily = _query(
        tmp_path, "SELECT environment, events, customers FROM daily_usage_by_feature ORDER BY 1"
    )
    assert daily == [("live", 3, 1), ("test", 3, 1)]
    burndown = _query(
        tmp_path, "SELECT environment, count(*) FROM credit_burndown_by_pool GROUP BY 1"
    )
    assert burndown == []  # unpaid: no plan credits granted in either environment
    info = _query(tmp_path, "SELECT environment, customers FROM snapshot_info ORDER BY 1")
    assert info == [("live", 1), ("test", 1)]
    body = msgspec.json.decode(snapshot.content)
    assert body["data"]["customers"] == 2
