"""The exporter inside the server: checkpoints keep the journal segments it has not exported,
and a clean shutdown drains it; audit records stay best effort, their drops counted (issue 10,
item 3)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.http.app import create_app
from allotment.persistence.history_cursor import exported_position
from allotment.persistence.journal import segments
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system
from tests.conftest import KEY, START

pytestmark = pytest.mark.anyio


async def _ingest(shard: LocalShard, keys: range) -> None:
    lookup = CustomerLookup(external_id="c")
    for i in keys:
        event = RecordUsage(
            idempotency_key=f"e{i}", event_name="ping", occurred_at=START, units=Decimal(1)
        )
        await shard.ingest(lookup, event, None)


def _exported_events(data_dir: Path) -> int:
    pattern = data_dir / "history" / "events" / "*.parquet"
    connection = duckdb.connect()
    try:
        row = connection.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[0])


async def test_a_checkpoint_keeps_the_segments_the_exporter_has_not_read(tmp_path: Path) -> None:
    """Scenario 3: checkpoints trimmed the journal the history is exported from. With the
    exporter behind, every segment stays; once it has caught up, they go."""
    system = build_system(Settings(data_dir=tmp_path, clock="manual"), ManualClock(START))
    journal_dir = tmp_path / "journal" / "test"
    async with system.running():
        shard = system.shard("test")
        for round_ in range(3):  # each checkpoint closes a segment and keeps two snapshots
            await _ingest(shard, range(round_ * 4, round_ * 4 + 4))
            reports = await system.checkpoint_all()
            assert [report.segments_deleted for report in reports] == [0]
        assert exported_position(tmp_path, "test") == 0
        first_segment = segments(journal_dir)[0]
        assert first_segment.name == f"journal-{1:020d}.wal"  # record 1 is still there

        report = await system.snapshot_analytics()
        assert system.storage is not None
        durable = system.storage.journal("test").durable_position
        assert report.exported == {"test": durable}
        assert exported_position(tmp_path, "test") == durable
        reports = await system.checkpoint_all()
        assert reports[0].segments_deleted > 0
        assert not first_segment.exists()
    assert _exported_events(tmp_path) == 12


@pytest.mark.exports_history_at_stop
async def test_a_clean_shutdown_drains_the_exporter(tmp_path: Path) -> None:
    """The issue's measurement: 5 events, a clean stop, and the history holds all 5 without
    any analytics snapshot having run."""
    settings = Settings(data_dir=tmp_path, clock="manual", analytics_every_s=3600)
    system = build_system(settings, ManualClock(START))
    async with system.running():
        await _ingest(system.shard("test"), range(5))
        assert exported_position(tmp_path, "test") == 0
    assert _exported_events(tmp_path) == 5
    assert system.storage is not None
    assert exported_position(tmp_path, "test") == system.storage.journal("test").durable_position


@pytest.mark.exports_history_at_stop
async def test_a_failed_shutdown_drain_is_caught_up_by_the_next_start(tmp_path: Path) -> None:
    """The drain cannot write (history is a file): the stop still completes, the journal keeps
    the segments, and the next start's export writes every event once."""
    settings = Settings(data_dir=tmp_path, clock="manual", analytics_every_s=3600)
    system = build_system(settings, ManualClock(START))
    (tmp_path / "history").write_text("not a directory")
    async with system.running():
        await _ingest(system.shard("test"), range(5))
        await system.checkpoint_all()
    (tmp_path / "history").unlink()
    assert exported_position(tmp_path, "test") == 0
    restarted = build_system(settings, ManualClock(START))
    async with restarted.running():
        await restarted.checkpoint_all()  # the export is behind: nothing may be trimmed
        await _ingest(restarted.shard("test"), range(5, 7))
    assert _exported_events(tmp_path) == 7


def test_dropped_audit_records_are_counted_in_health(tmp_path: Path) -> None:
    """Audit records of checks (ENT-30) stay best effort, outside the journal: when their
    buffer overflows between two snapshots the oldest go, and the admin statistics (formerly
    /health) count them (item 3)."""
    settings = Settings(clock="manual", data_dir=tmp_path, audit_buffer_size_max=3)
    system = build_system(settings, ManualClock(START), persistent=False)
    keys = KeyStore()
    keys.add(KEY)
    with TestClient(create_app(settings, system, keys), base_url="http://t.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        body = {"customerReferenceId": "c", "firstName": "A", "lastName": "B", "email": "a@b.co"}
        assert client.post("/api/v1/client/customers", json=body).status_code == 201
        for _ in range(5):
            assert client.get("/api/v1/client/entitlements/c/api_calls").status_code == 200
        shards = client.get("/api/v1/admin/statistics").json()["data"]["shards"]
    audits = next(shard["audits"] for shard in shards if shard["environment"] == "test")
    assert (audits["appended"], audits["size"], audits["dropped"]) == (5, 3, 2)
