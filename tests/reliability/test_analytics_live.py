"""An analyst opens analytics.duckdb read-only from another process while the server ingests,
and the totals match what the API says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from tests.reliability.server import KEY, Server

pytestmark = pytest.mark.anyio
C = "/api/v1/client"
HEADERS = {"Authorization": f"Bearer {KEY}"}

ANALYST = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
events, units = con.execute("SELECT count(*), sum(usage_units) FROM events WHERE feature_key = 'api_calls'").fetchone()
used = con.execute("SELECT sum(used) FROM usage_counters WHERE feature_key = 'api_calls' AND is_current_period").fetchone()[0]
margin = con.execute("SELECT sum(cost) FROM margin_by_customer_feature_model").fetchone()[0]
print(json.dumps({"events": events, "units": float(units or 0), "used": float(used or 0), "cost": float(margin or 0)}))
"""


def _analyst(path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", ANALYST, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


async def _ingest(client: httpx.AsyncClient, prefix: str, count: int) -> None:
    for i in range(count):
        body = {
            "eventName": "api_calls",
            "customerReferenceId": "u1",
            "eventIdempotencyKey": f"{prefix}{i}",
            "usageUnits": 2,
        }
        assert (await client.post(f"{C}/events", json=body)).status_code == 201


async def test_analyst_reads_a_consistent_snapshot_while_the_server_ingests(tmp_path: Path) -> None:
    server = Server(tmp_path, "--analytics-every", "3600")
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=10) as client:
            body = {
                "customerReferenceId": "u1",
                "firstName": "A",
                "lastName": "B",
                "email": "a@b.co",
            }
            await client.post(f"{C}/customers", json=body)
            plans = (await client.get(f"{C}/plans")).json()["data"]
            usage = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "usage_monthly")
            await client.post(
                f"{C}/subscriptions", json={"customerReferenceId": "u1", "planId": usage}
            )
            await _ingest(client, "a", 50)
            assert (await client.post("/api/v1/admin/snapshots")).status_code == 201
            async with anyio.create_task_group() as tg:
                tg.start_soon(_ingest, client, "b", 150)  # the server keeps ingesting meanwhile
                first = await anyio.to_thread.run_sync(_analyst, tmp_path / "analytics.duckdb")
            assert first == {
                "events": 50,
                "units": 100.0,
                "used": 100.0,
                "cost": pytest.approx(50 * 2 * 0.0002),
            }
            assert (await client.post("/api/v1/admin/snapshots")).status_code == 201
            second = await anyio.to_thread.run_sync(_analyst, tmp_path / "analytics.duckdb")
            api_used = (await client.get(f"{C}/entitlements/u1/api_calls")).json()["data"]["usage"][
                "used"
            ]
            assert second["events"] == 200 and second["units"] == second["used"] == api_used == 400
    finally:
        server.stop()
