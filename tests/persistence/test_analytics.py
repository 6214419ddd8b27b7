"""The analytics database: every documented table and view exists and answers, also when the
server has no customers yet, and a second snapshot replaces the first atomically."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import anyio.lowlevel
import duckdb
import pytest

from allotment.config import Settings
from allotment.domain.commands import (
    CommitReservation,
    CommitUnits,
    CostInput,
    HoldItem,
    MarkInvoicePaid,
    RecordUsage,
    Reserve,
    Subscribe,
)
from allotment.domain.om_commands import CreateEntitlement
from allotment.domain.om_state import EntitlementKind
from allotment.domain.replies import Subscribed
from allotment.domain.state import Profile
from allotment.persistence.analytics_job import AnalyticsFailed
from allotment.persistence.history_cursor import exported_position
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup, OmTarget
from allotment.runtime.records import EvaluationContext
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import START

pytestmark = pytest.mark.anyio

TABLES = {
    "snapshot_info", "customers", "plans", "features", "plan_features", "credit_models",
    "subscriptions", "invoices", "invoice_items", "usage_counters", "credit_pools",
    "credit_grants", "events", "entitlement_checks", "credit_transactions",
    "margin_by_customer_feature_model", "daily_usage_by_feature", "credit_burndown_by_pool",
    "accounts_receivable", "credit_notes", "credit_note_lines", "net_revenue_by_month",
    "unapplied_payments", "reservations", "reservation_history", "meters", "entitlements",
    "grants",
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


DOCS = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


async def test_every_query_in_the_analytics_docs_runs(tmp_path: Path) -> None:
    """STYLE habit 24: the documented examples are executed, so they cannot rot."""
    clock = ManualClock(START)
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), clock)
    async with system.running():
        shard = system.shard("live")
        await shard.create_customer("acme", Profile(first_name="Ada"))
        lookup = CustomerLookup(external_id="acme")
        plan = shard.catalog.plan_by_key("pro_monthly")
        assert plan is not None
        reply = await shard.command(lookup, Subscribe(plan_id=plan.id))
        assert isinstance(reply, Subscribed)
        await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
        for i in range(3):
            event = RecordUsage(
                idempotency_key=f"e{i}", event_name="chat", feature_key="ai_chat", occurred_at=clock.now(),
                units=Decimal(900), revenue_amount=Decimal("0.001"),
                cost_input=CostInput(model="gpt-4o", model_provider="openai", input_tokens=600, output_tokens=300),
            )  # fmt: skip
            await shard.ingest(lookup, event, None)
        unpriced = RecordUsage(
            idempotency_key="e-unpriced", event_name="chat", occurred_at=clock.now(),
            cost_input=CostInput(model="no-such-model", input_tokens=10),
        )  # fmt: skip
        await shard.ingest(lookup, unpriced, None)
        hold = (HoldItem(feature_key="ai_chat", units=Decimal(1000)),)
        await shard.reserve(lookup, Reserve(reservation_id="r1", items=hold))
        clock.advance_to(clock.now() + timedelta(seconds=30))
        commit = CommitReservation(reservation_id="r1", occurred_at=clock.now(),
                                   items=(CommitUnits(feature_key=None, usage_units=Decimal(600)),))  # fmt: skip
        await shard.settle("r1", commit, None)
        metered = CreateEntitlement(
            feature_key="api_calls", kind=EntitlementKind.METERED, usage_period="MONTH"
        )  # no grant: no access (OM-98)
        await shard.openmeter_turn(OmTarget(customer="acme"), metered, lambda *_: None)
        await system.snapshot_analytics()
    queries = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), re.S)
    assert len(queries) == 9
    connection = duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True)
    results = [connection.execute(query).fetchall() for query in queries]
    connection.close()
    margin, unknown, models = results[0], results[1], results[2]
    assert [row[:3] for row in unknown] == [("no-such-model", None, 1)]  # OPS-D5
    assert margin and margin[0][0] == "acme"  # revenue 0.003 < cost: a negative margin
    assert models[0][0] == "gpt-4o" and models[0][2] == 2700
    holds = [row[:4] + row[6:] for row in results[6]]  # RSV-25: 30 s held, 600 of 1000 used
    assert holds == [("ai_chat", "commit", 1, 30, 0.6)]  # a ratio: DuckDB divides in double
    assert results[7] == []  # OM-60: no CloudEvent was ingested here, so no type arrived
    assert [row[1:] for row in results[8]] == [("acme", "api_calls", False, 0, 0, 0)]  # OM-158


async def test_a_snapshot_finishes_while_checks_keep_filling_the_audit_buffer(
    tmp_path: Path,
) -> None:
    """Regression: draining `while the buffer is not empty` never ended under sustained load."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        await shard.create_customer("c", Profile(first_name="A"))
        for _ in range(5000):
            await shard.evaluate("c", "api_calls", None, EvaluationContext(method="GET"))
        stop = anyio.Event()

        async def keep_checking() -> None:
            while not stop.is_set():
                await shard.evaluate("c", "api_calls", None, EvaluationContext(method="GET"))
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_checking)
            with anyio.fail_after(30):
                report = await system.snapshot_analytics()
            stop.set()
    assert report.history_rows >= 5000


async def _ten_checks(shard: LocalShard) -> None:
    """Ten audit records for customer `c` (created if need be)."""
    if shard.customer_count() == 0:
        await shard.create_customer("c", Profile(first_name="A"))
    for _ in range(10):
        await shard.evaluate("c", "api_calls", None, EvaluationContext(method="GET"))


def _count(data_dir: Path, table: str) -> int:
    connection = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[0])


async def test_history_not_written_by_a_failed_worker_is_sent_again_ent_33(tmp_path: Path) -> None:
    """The worker fails before the history reaches its files: the drained audit records go
    back to their buffer and the next snapshot writes them."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        await _ten_checks(shard)
        (tmp_path / "history").write_text("not a directory")  # the history cannot be written
        with pytest.raises(AnalyticsFailed, match="history"):
            await system.snapshot_analytics()
        assert len(shard.audits) == 10
        (tmp_path / "history").unlink()
        report = await system.snapshot_analytics()
    assert report.history_rows == 10
    assert _count(tmp_path, "entitlement_checks") == 10


async def test_history_written_before_the_worker_failed_is_not_sent_twice(tmp_path: Path) -> None:
    """The worker wrote the history, then could not swap the database in: the records are not
    re-queued (they would be counted twice), and the old database stays."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        await _ten_checks(shard)
        (tmp_path / "analytics.duckdb").mkdir()
        (tmp_path / "analytics.duckdb" / "in-the-way").write_text("")  # os.replace fails
        with pytest.raises(AnalyticsFailed):
            await system.snapshot_analytics()
        assert len(shard.audits) == 0
        (tmp_path / "analytics.duckdb" / "in-the-way").unlink()
        (tmp_path / "analytics.duckdb").rmdir()
        report = await system.snapshot_analytics()
    assert report.history_rows == 0
    assert _count(tmp_path, "entitlement_checks") == 10


async def test_history_exported_before_the_worker_failed_is_not_exported_twice(
    tmp_path: Path,
) -> None:
    """The worker exports the event from the journal, then cannot swap the database in: the
    next snapshot exports nothing again, so the event is counted once (issue 10, item 3)."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    async with system.running():
        shard = system.shard("test")
        lookup = CustomerLookup(external_id="c")
        event = RecordUsage(idempotency_key="e", event_name="ping", occurred_at=START)
        await shard.ingest(lookup, event, None)
        await _ten_checks(shard)
        (tmp_path / "analytics.duckdb").mkdir()
        (tmp_path / "analytics.duckdb" / "in-the-way").write_text("")  # os.replace fails
        with pytest.raises(AnalyticsFailed):
            await system.snapshot_analytics()
        assert exported_position(tmp_path, "test") == shard_position(system)
        (tmp_path / "analytics.duckdb" / "in-the-way").unlink()
        (tmp_path / "analytics.duckdb").rmdir()
        report = await system.snapshot_analytics()
    assert report.history_rows == 0  # nothing new: neither audits nor events again
    assert (_count(tmp_path, "events"), _count(tmp_path, "entitlement_checks")) == (1, 10)


def shard_position(system: ActorSystem) -> int:
    assert system.storage is not None
    return system.storage.journal("test").durable_position


def test_files_a_killed_worker_left_behind_are_removed_at_start(tmp_path: Path) -> None:
    leftovers = [
        tmp_path / ".analytics-0123abcd.duckdb",
        tmp_path / "history" / "events" / "day=2025-01-15" / ".part-20250115T000000-ab.parquet.tmp",
    ]
    kept = tmp_path / "history" / "events" / "day=2025-01-15" / "part-20250115T000000-ab.parquet"
    for path in [*leftovers, kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    assert [path.exists() for path in leftovers] == [False, False]
    assert kept.exists()
