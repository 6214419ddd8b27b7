"""`allotment serve` as an operator runs it (issue 13, items 5 and 6): with `--log-format json`
every line on standard error is one JSON object, granian's included; a request's lines carry
the id echoed in `X-Request-Id` (OPS-M3, OPS-M4); and an idle server's scheduled checkpoints
and analytics snapshots are skipped, as `/metrics` shows (OPS-M5, OPS-M6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.server import KEY, free_port
from tests.waiting import wait_until

AUTH = {"Authorization": f"Bearer {KEY}"}
BOUND_S = 120.0  # a bound on waiting for a condition, never an expectation


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _skipped(url: str) -> bool:
    """Whether both the checkpoint and the analytics schedule have skipped a run."""
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=5.0).text
    skipped = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("result") == "skipped" and sample.value >= 1
    }
    return skipped == {"allotment_checkpoints_total", "allotment_analytics_runs_total"}


def test_json_logs_carry_the_request_id_and_an_idle_server_skips_its_upkeep(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "allotment", "serve", "--data-dir", str(tmp_path / "data"),
               "--port", str(port), "--api-key", KEY, "--log-format", "json", "--access-log",
               "--checkpoint-every", "1", "--analytics-every", "1"]  # fmt: skip
    stderr_path = tmp_path / "stderr.log"
    with (tmp_path / "stdout.log").open("wb") as out, stderr_path.open("wb") as err:
        server = subprocess.Popen(command, stdout=out, stderr=err, start_new_session=True)
        try:
            wait_until(lambda: server.poll() is not None or _ready(url), "the server serving")
            assert server.poll() is None, stderr_path.read_text()
            event = {"eventName": "api_calls", "customerReferenceId": "acme",
                     "featureKey": "api_calls", "eventIdempotencyKey": "e1"}  # fmt: skip
            accepted = httpx.post(f"{url}/api/v1/client/events", json=event, headers=AUTH)
            assert accepted.status_code == 201, accepted.text
            check = httpx.get(
                f"{url}/api/v1/client/entitlements/acme/api_calls",
                headers={**AUTH, "X-Request-Id": "trace-42"},
            )
            assert check.status_code == 200
            assert check.headers["x-request-id"] == "trace-42"
            # Each schedule writes once (the event, the check's audit record), then skips.
            wait_until(lambda: _skipped(url), "a skipped checkpoint and a skipped analytics run")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=BOUND_S)
    lines = [line for line in stderr_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), lines
    loggers = {record["logger"] for record in records}
    # granian logs only warnings (its early "Listening at" is silenced, OPS-P4): in a healthy
    # run its lines are none; tests/test_logs.py checks its loggers get this format
    assert {"allotment.access", "allotment.storage"} <= loggers, loggers
    access = [r for r in records if r["logger"] == "allotment.access"]
    traced = [r for r in access if r.get("request_id") == "trace-42"]
    assert len(traced) == 1, access
    assert (
        traced[0]["http"]["route"]
        == "/api/v1/client/entitlements/{customerReferenceId}/{feature-key}"
    )
    assert traced[0]["http"]["status"] == 200
    assert all(r.get("request_id") for r in access)  # every request has its id
