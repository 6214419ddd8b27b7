"""The analytics database: every documented table and view exists and answers, also when the
server has no customers yet, and a second snapshot replaces the first atomically."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from allotment.config import Settings
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio

TABLES = {
    "snapshot_info", "customers", "plans", "features", "plan_features", "credit_models",
    "subscriptions", "invoices", "invoice_items", "usage_counters", "credit_pools",
    "credit_grants", "events", "entitlement_checks", "credit_transactions",
    "margin_by_customer_feature_model", "daily_usage_by_feature", "credit_burndown_by_pool",
    "accounts_receivable",
}  # fmt: skip


async def test_empty_server_snapshot_has_every_table_and_view(tmp_path: Path) -> None:
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        system.shard("test")
        report = await system.snapshot_analytics()
        first_inode = (tmp_path / "analytics.duckdb").stat().st_ino
        await system.snapshot_analytics()
    assert report.customers == 0
    assert (tmp_path / "analytics.duckdb").stat().st_ino != first_inode  # a new file, swapped in
    connection = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    names = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    assert names == TABLES
    for name in TABLES:
        connection.execute(f"SELECT count(*) FROM {name}").fetchone()  # every view resolves
    plans = connection.execute("SELECT count(*) FROM plans WHERE environment = 'test'").fetchone()
    assert plans == (5,)
    connection.close()
