"""History from the journal through a real server (issue 10, item 3): a clean stop drains
the exporter, and after rounds of `kill -9` (landing in group commits, checkpoints and history
exports alike) the `events` view holds every accepted event once and the ledger view adds up to
every pool's balance. Exports are triggered with POST /api/v1/admin/snapshots and awaited:
nothing waits for a file to appear within some time."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import duckdb
import httpx
import pytest

from tests.reliability.server import KEY, Server
from tests.reliability.test_crash import _event, _prepare, _verify

pytestmark = pytest.mark.anyio
C = "/api/v1/client"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _query(path: Path | None, sql: str) -> list[tuple[Any, ...]]:
    """`sql` on the database at `path` (read-only), or on none."""
    connection = duckdb.connect(str(path), read_only=True) if path else duckdb.connect()
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


async def _snapshot(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=120) as client:
        response = await client.post("/api/v1/admin/snapshots")
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()["data"]
    return report


async def test_five_events_survive_a_clean_restart_in_the_history(tmp_path: Path) -> None:
    """The issue's measurement: 5 events, a clean shutdown, a restart; count(*) was 0."""
    server = Server(tmp_path, "--analytics-every", "3600")
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as client:
            for i in range(5):
                body = {"eventName": "ping", "customerReferenceId": "u1",
                        "eventIdempotencyKey": f"e{i}", "usageUnits": 1}  # fmt: skip
                assert (await client.post(f"{C}/events", json=body)).status_code == 201
    finally:
        server.stop(timeout_s=120)  # the shutdown drain starts a process: give it room
    files = str(tmp_path / "history" / "events" / "*.parquet")
    assert _query(None, f"SELECT count(*) FROM read_parquet('{files}')") == [(5,)]
    restarted = Server(tmp_path, "--analytics-every", "3600")
    try:
        await _snapshot(restarted)
    finally:
        restarted.stop(timeout_s=120)
    database = tmp_path / "analytics.duckdb"
    assert _query(database, "SELECT count(*), count(DISTINCT external_id) FROM events") == [(5, 1)]


async def _load_until_killed(
    server: Server, prefix: str, sent: dict[str, int], acked: set[str], kill_after_s: float
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=5) as client:

        async def ingest(worker: int) -> None:
            for i in range(100_000):
                key = f"{prefix}w{worker}-{i}"
                sent[key] = units = random.randint(1, 9)
                try:
                    response = await client.post(f"{C}/events", json=_event(key, units))
                except httpx.HTTPError:
                    return  # the server died under us
                if response.status_code in (200, 201):
                    acked.add(key)

        async with anyio.create_task_group() as tg:
            for worker in range(6):
                tg.start_soon(ingest, worker)
            await anyio.sleep(kill_after_s)  # where the kill lands, not what must have happened
            server.kill()


def _assert_history_matches_state(database: Path, accepted: int) -> None:
    events = _query(
        database,
        "SELECT count(*), count(DISTINCT (journal_position, fact_index)),"
        " count(DISTINCT idempotency_key) FROM events",
    )
    assert events == [(accepted, accepted, accepted)]
    ledger = _query(
        database,
        "SELECT count(*), count(DISTINCT (journal_position, fact_index)) FROM credit_transactions",
    )
    assert ledger[0][0] == ledger[0][1] > accepted // 3  # about half the events debit credits
    pools = _query(
        database,
        """SELECT p.pool_id, p.balance,
                  p.total_granted - p.total_consumed - p.total_expired - p.total_reversed,
                  sum(t.amount), arg_max(t.balance_after, (t.journal_position, t.fact_index))
           FROM credit_pools p JOIN credit_transactions t USING (environment, pool_id)
           GROUP BY ALL""",
    )
    assert pools, "no pool has a history"
    for pool_id, balance, from_totals, from_ledger, last_balance in pools:
        assert balance == from_totals == from_ledger == last_balance, pool_id
    burned = _query(database, "SELECT sum(consumed) FROM credit_burndown_by_pool")[0][0]
    assert burned == _query(database, "SELECT sum(total_consumed) FROM credit_pools")[0][0]


async def test_history_equals_the_journal_after_kill_9_rounds(tmp_path: Path) -> None:
    """Scenario 3: three kill -9 rounds under load once left 874 of 12,873 accepted events in
    the `events` view. Checkpoints every 0.2 s trim the journal, exports run back to back."""
    extra = ("--checkpoint-every", "0.2", "--analytics-every", "0.3")
    sent: dict[str, int] = {}
    acked: set[str] = set()
    for number, kill_after_s in enumerate([0.7, 1.3, 2.1]):
        server = Server(tmp_path, *extra)
        try:
            if number == 0:
                async with httpx.AsyncClient(
                    base_url=server.url, headers=HEADERS, timeout=5
                ) as client:
                    await _prepare(client)
            await _load_until_killed(server, f"r{number}", sent, acked, kill_after_s)
        finally:
            server.stop()
    assert len(acked) > 20, "the load never got going"
    restarted = Server(tmp_path, *extra)
    try:
        await _verify(restarted, sent, acked)  # after it, every sent event is accepted once
        report = await _snapshot(restarted)
    finally:
        restarted.stop(timeout_s=120)
    assert report["exported"]["test"] > 0
    _assert_history_matches_state(tmp_path / "analytics.duckdb", len(sent))
    units = _query(tmp_path / "analytics.duckdb", "SELECT sum(usage_units) FROM events")[0][0]
    assert units == sum(Decimal(u) for u in sent.values())
