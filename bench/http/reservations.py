"""Reservations over HTTP with fsync (issue 14, "Performance"), in one run on one server:

- a reserve+commit pair against one event ingest (the same usage and cost), spread over the
  customers: target pair <= 2x ingest, i.e. pairs/s >= ingests/s / 2;
- pairs on one hot customer against pairs spread over `--customers` customers, 64 clients
  each: target >= 5,000 pairs/s hot, and no collapse against the spread;
- the trivial Litestar POST of `bench.http.ceilings`, served by granian as allotment is, with
  the event's request: what one process of the framework answers on this machine with no
  work in the handler. A pair is two requests, so half of it is the most pairs/s any
  one-process Litestar server could answer here: the 5,000 hot pairs/s are read against it.

Rounds are interleaved (one run of every scenario, then the next round), each figure is the
median of the rounds, and the load average is recorded before and after: the machine may be
shared. Clients choose the reservationIds, so wrk's Lua pairs each commit with its reserve
(`lua/reserve.lua`).

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m bench.http.reservations \
        [--customers 10000] [--rounds 5] [--duration 4] [--save NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.http.report import provenance, publish
from bench.http.servers import Server, free_port, running
from bench.http.suite import capture_bodies
from bench.http.wrk import ROOT, wrk_command

KEY = "sk_test_" + "reservations" * 3
AUTH = {"Authorization": f"Bearer {KEY}"}
CONNECTIONS = 64
THREADS = 2
# name -> (kind, customers: None for all of them, the server: allotment or the framework's)
SCENARIOS: dict[str, tuple[str, int | None, str]] = {
    "ingest_spread": ("event", None, "allotment"),
    "pair_spread": ("pair", None, "allotment"),
    "pair_hot": ("pair", 1, "allotment"),
    "framework_post": ("event", None, "litestar"),
}
CHECK_C0 = "/api/v1/client/entitlements/c0/api_calls"


def _log(message: str) -> None:
    print(f"[reservations] {message}", file=sys.stderr, flush=True)


def _server(workdir: Path, data_dir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable, "-m", "allotment", "serve", "--durability", "fsync",
        "--data-dir", str(data_dir), "--api-key", KEY, "--port", str(port),
        "--checkpoint-every", "86400", "--analytics-every", "86400",
    ]  # fmt: skip
    return Server("allotment", command, port, workdir / "allotment.log")


def _framework(workdir: Path, bodies: Path) -> Server:
    """The trivial Litestar ceiling, answering allotment's own bytes (bench.http.ceilings)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.http.ceilings", "litestar", "--port", str(port),
               "--bodies", str(bodies)]  # fmt: skip
    return Server("litestar", command, port, workdir / "litestar.log")


def _populate(data_dir: Path, customers: int) -> float:
    """Build the state in a process of its own: the data directory's lock (one server per
    directory) is then released before the server starts."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "bench.http.state", str(data_dir), "--customers",
               str(customers)]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def _wrk(port: int, kind: str, customers: int, duration_s: float) -> dict[str, Any]:
    """One closed-loop wrk run; returns its operations per second (pairs or events)."""
    nonce = f"{kind}-{secrets.token_hex(4)}"
    arguments = [KEY, str(customers), kind, nonce]
    url = f"http://127.0.0.1:{port}"
    command = wrk_command(url, "reserve.lua", arguments, THREADS, CONNECTIONS, duration_s)
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=duration_s + 60
    )
    reports = [line for line in done.stdout.splitlines() if line.startswith("BENCH_")]
    lines = dict(line.split(" ", 1) for line in reports)
    if done.returncode != 0 or "BENCH_JSON" not in lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    report = json.loads(lines["BENCH_JSON"])
    seconds = report["duration_us"] / 1e6
    paired = json.loads(lines.get("BENCH_PAIRS", '{"pairs": 0, "denied": 0}'))
    operations = paired["pairs"] if kind == "pair" else report["requests"]
    return {
        "per_s": round(operations / seconds, 1),
        "requests_per_s": round(report["requests"] / seconds, 1),
        "non_2xx": report["errors"]["status"],
        "denied": paired["denied"],
        "latency_p50_ms": report["latency_us"]["p50"] / 1000,
        "latency_p99_ms": report["latency_us"]["p99"] / 1000,
    }


def _median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "median_per_s": statistics.median(s["per_s"] for s in samples),
        "samples_per_s": [s["per_s"] for s in samples],
        "non_2xx": sum(s["non_2xx"] for s in samples),
        "denied": sum(s["denied"] for s in samples),
        "median_latency_p50_ms": statistics.median(s["latency_p50_ms"] for s in samples),
        "median_latency_p99_ms": statistics.median(s["latency_p99_ms"] for s in samples),
    }


def measure(customers: int, rounds: int, duration_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="allotment-rsv-bench-") as directory:
        workdir = Path(directory)
        _log(f"building {customers:,} customers")
        populate_s = _populate(workdir / "data", customers)
        server = _server(workdir, workdir / "data")
        bodies = workdir / "bodies.json"
        framework = _framework(workdir, bodies)
        ports = {"allotment": server.port, "litestar": framework.port}
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
        load_before = os.getloadavg()
        with running([(server, CHECK_C0, 600.0, AUTH)]):
            capture_bodies(server.port, bodies, customers, AUTH)
            with running([(framework, CHECK_C0, 60.0, AUTH)]):
                for round_no in range(rounds):
                    for name, (kind, scenario_customers, target) in SCENARIOS.items():
                        result = _wrk(
                            ports[target], kind, scenario_customers or customers, duration_s
                        )
                        samples[name].append(result)
                        _log(f"round {round_no + 1}/{rounds} {name}: "
                             f"{result['per_s']:,.0f}/s (non-2xx {result['non_2xx']}, "
                             f"denied {result['denied']})")  # fmt: skip
                        time.sleep(0.5)
        load_after = os.getloadavg()
    figures = {name: _median(runs) for name, runs in samples.items()}
    ingest = figures["ingest_spread"]["median_per_s"]
    pair, hot = figures["pair_spread"]["median_per_s"], figures["pair_hot"]["median_per_s"]
    framework_pairs = figures["framework_post"]["median_per_s"] / 2  # two requests a pair
    return {
        "populate_s": round(populate_s, 1),
        "server": shlex.join(server.command),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "scenarios": figures,
        "targets": {
            # the cost of a pair over the cost of an ingest, from the closed-loop throughputs
            "pair_cost_over_ingest": {"measured": round(ingest / pair, 2), "goal": "<= 2"},
            "hot_pairs_per_s": {"measured": hot, "goal": ">= 5000"},
            "hot_over_spread": {"measured": round(hot / pair, 2), "goal": "no collapse"},
            # what one process of the framework answers here, with no work, in pairs
            "framework_pairs_per_s": round(framework_pairs, 1),
            "hot_pairs_over_framework_pairs": round(hot / framework_pairs, 2),
            "ingest_over_framework_post": round(
                ingest / figures["framework_post"]["median_per_s"], 2
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--save", metavar="NAME", help="write bench/results/<date>-NAME.json")
    args = parser.parse_args()
    result = {
        **provenance("bench.http.reservations"),
        "connections": CONNECTIONS,
        "wrk_threads": THREADS,
        "customers": args.customers,
        "rounds": args.rounds,
        "duration_s": args.duration,
        **measure(args.customers, args.rounds, args.duration),
    }
    publish(result, args.save)


if __name__ == "__main__":
    main()
