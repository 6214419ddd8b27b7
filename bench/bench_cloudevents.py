"""CloudEvents batch ingest against the Tanso batch endpoint, with fsync, in one run (issue 16):
durable events per second through `POST /api/v1/events` (application/cloudevents-batch+json)
and through `POST /api/v1/client/events/batch`, on one `allotment serve` with its default
durability (fsync before every acknowledgement).

    .venv/bin/python -m bench.bench_cloudevents [--customers 200] [--batch 100] [--runs 5]
        [--duration 5] [--save]

Both sides do the same accounting: every event is one unit of feature `bench_calls` for one of
`--customers` subscribed customers. A CloudEvent gets there through the COUNT meter
`bench_calls` (OM-30) and is journalled as well (`CloudEventRecorded`), so it does strictly
more work than the Tanso event. Runs alternate (Tanso, CloudEvents, Tanso, ...) so that noise
from other work on the machine falls on both; the figures are the medians, and the ratio is
CloudEvents over Tanso. wrk drives both with the same threads, connections and batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.http.wrk import run_wrk, wrk_command, wrk_version

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "sk_test_" + "bench" * 8


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "allotment", "serve", "--data-dir", str(data_dir),
               "--port", str(port), "--api-key", KEY]  # fmt: skip
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120  # a bound on start-up, not an expectation
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError((data_dir / "server.log").read_text())


def _prepare(url: str, customers: int) -> None:
    """A COUNT meter, a feature counting it, a free plan linking the feature, and customers
    c<i> (Tanso reference id) with subject s<i> (OpenMeter), subscribed."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as c:
        meter = {"slug": "bench_calls", "aggregation": "COUNT", "eventType": "bench.api"}
        assert c.post("/api/v1/meters", json=meter).status_code == 201
        feature = {"key": "bench_calls", "name": "Calls", "meterSlug": "bench_calls"}
        assert c.post("/api/v1/features", json=feature).status_code == 201
        link = {"featureKey": "bench_calls", "pricingType": "usage_based", "pricePerUnit": 0}
        plan = {"key": "bench_plan", "name": "Bench", "priceAmount": 0, "currency": "USD",
                "intervalMonths": 1, "billingTiming": "IN_ARREARS", "features": [link]}  # fmt: skip
        assert c.put("/api/v1/admin/catalog", json={"plans": [plan]}).status_code == 200
        plans = c.get("/api/v1/client/plans").json()["data"]
        plan_id = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "bench_plan")
        for i in range(customers):
            body = {"name": f"c{i}", "key": f"c{i}", "usageAttribution": {"subjectKeys": [f"s{i}"]}}
            assert c.post("/api/v1/customers", json=body).status_code == 201
            sub = {"customerReferenceId": f"c{i}", "planId": plan_id}
            assert c.post("/api/v1/client/subscriptions", json=sub).status_code == 201


def _run(url: str, script: str, args: argparse.Namespace) -> dict[str, Any]:
    wrk_args = [KEY, str(args.customers), str(args.batch), secrets.token_hex(4)]
    result = run_wrk(url, script, wrk_args, args.threads, args.connections, args.duration)
    if result.errors.status or result.item_failures:
        raise RuntimeError(f"{script}: failures {result.errors} {result.item_failures}")
    return {"events_per_s": result.requests_per_s * args.batch, "requests": result.requests,
            "p50_us": result.latency_us.p50, "p99_us": result.latency_us.p99}  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        server = _serve(Path(tmp), port)
        url = f"http://127.0.0.1:{port}"
        try:
            _prepare(url, args.customers)
            samples: dict[str, list[dict[str, Any]]] = {"tanso_batch": [], "cloudevents": []}
            for run in range(args.runs):
                for name, script in (
                    ("tanso_batch", "tanso_batch.lua"),
                    ("cloudevents", "cloudevents.lua"),
                ):
                    samples[name].append(_run(url, script, args))
                    rate = samples[name][-1]["events_per_s"]
                    print(
                        f"run {run + 1}/{args.runs} {name}: {rate:,.0f} events/s", file=sys.stderr
                    )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    medians = {k: statistics.median(s["events_per_s"] for s in v) for k, v in samples.items()}
    return {
        "issue": 16,
        "what": "durable (fsync) batch ingest, events/s: CloudEvents vs the Tanso batch endpoint",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.bench_cloudevents", *sys.argv[1:]]),
        "wrk": wrk_command(
            url,
            "cloudevents.lua",
            ["KEY", str(args.customers), str(args.batch), "NONCE"],
            args.threads,
            args.connections,
            args.duration,
        ),
        "wrk_version": wrk_version(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": os.getloadavg(),
        },
        "parameters": {
            "customers": args.customers,
            "batch": args.batch,
            "runs": args.runs,
            "duration_s": args.duration,
            "threads": args.threads,
            "connections": args.connections,
            "durability": "fsync",
        },
        "median_events_per_s": medians,
        "ratio_cloudevents_to_tanso": medians["cloudevents"] / medians["tanso_batch"],
        "target": "ratio >= 1",
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.save:
        day = datetime.now(UTC).date().isoformat()
        (RESULTS / f"{day}-cloudevents-ingest.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
