"""Issue 13, item 2: "listening" is printed only when requests will be served (OPS-P4), and a
long recovery shows its progress (OPS-P5), through the real command.

The recovery is made "long" with --recovery-progress-every 0 (report at every look at the
clock), so the test needs no slow recovery and no timing: it reads the lines that came out.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.operations.served import LISTENING, Served
from tests.reliability.server import free_port

KEY = "sk_test_" + "listen" * 6
CUSTOMERS = 1500  # each one a journal record of its own: more than one progress step (1024)
SEED_RECORDS = 1  # the catalog file's plans, journalled at the first start (MNY-C5, PLN-3)


def _record_customers(url: str) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    for first in range(0, CUSTOMERS, 500):
        events = [
            {"eventName": "api_calls", "customerReferenceId": f"c{n}",
             "eventIdempotencyKey": f"e{n}", "usageUnits": 1}
            for n in range(first, first + 500)
        ]  # fmt: skip
        response = httpx.post(
            f"{url}/api/v1/client/events/batch", json={"events": events}, headers=headers,
            timeout=120,
        )  # fmt: skip
        assert response.status_code == 200, response.text


def test_listening_only_when_serving_and_recovery_progress(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    common = ("--data-dir", data, "--api-key", KEY, "--port", str(free_port()))
    first = Served(tmp_path / "first.log", *common)
    try:
        ready = httpx.get(f"{first.url}/health/ready", timeout=30)
        assert ready.status_code == 200, ready.text  # the line came when it served
        _record_customers(first.url)
    finally:
        first.kill()  # no checkpoint: the restart replays every record from the journal

    second = Served(tmp_path / "second.log", *common, "--recovery-progress-every", "0")
    try:
        # the first request after the line is served: nothing waits for recovery any more
        ready = httpx.get(f"{second.url}/health/ready", timeout=30)
        assert ready.status_code == 200, ready.text
        lines = second.output().splitlines()
        progress = [line for line in lines if "recovering test:" in line]
        listening = next(i for i, line in enumerate(lines) if line.startswith(LISTENING))
        assert progress, second.output()
        assert all(lines.index(line) < listening for line in progress)
        shape = re.compile(
            r"recovering test: (\d+) of (\d+) journal records \(\d+%\), (\d+) customers, "
            r"\d+ records/s, ETA \d+ s$"
        )
        first_step = shape.search(progress[0])
        assert first_step is not None, progress[0]
        replayed, total, customers = map(int, first_step.groups())
        assert (replayed, total) == (1024, CUSTOMERS + SEED_RECORDS)
        assert 0 < customers <= replayed
        assert sum("Listening" in line for line in lines) == 0  # granian's early line is gone
    finally:
        assert second.stop() == 0
