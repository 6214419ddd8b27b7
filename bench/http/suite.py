"""The HTTP suite: allotment against its two framework ceilings, under the same load.

Three servers run side by side on 127.0.0.1, each a granian process with one worker (the
settings of `allotment serve`): the raw ASGI ceiling, the trivial Litestar ceiling and
allotment itself (`--durability fsync`, on a data directory holding `customers` paid
customers). Load comes from separate processes: wrk for closed-loop throughput, and
`bench.http.openloop` for latency at fixed offered rates. Runs are interleaved (run 1 of every
scenario, then run 2, ...) so that noise on the machine falls on every figure alike; each
figure is the median of `runs` runs.

    .venv/bin/python -m bench.http.suite [--quick]

Prints one JSON document; `bench.run_all` embeds it in the results file.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.http.aggregate import (
    SERVERS,
    closed_figure,
    hot_key,
    open_comparison,
    open_figure,
    ratios,
)
from bench.http.batch import measure_batch_ingest
from bench.http.scenarios import FULL, QUICK, ClosedLoop, OpenLoop, Sizes, closed_loop, open_loop
from bench.http.servers import Server, free_port, request, running
from bench.http.wrk import WrkRun, run_wrk, wrk_command

__all__ = ("KEY", "capture_bodies", "run_suite")

KEY = "sk_test_" + "benchmark" * 4  # accepted by the server given `--api-key KEY`
AUTH = {"Authorization": f"Bearer {KEY}"}
CHECK_C0 = "/api/v1/client/entitlements/c0/api_calls"
_READY_S = {"raw_asgi": 60.0, "litestar": 120.0, "allotment": 600.0}  # recovery of 1M: < 60 s


def _log(message: str) -> None:
    print(f"[http] {message}", file=sys.stderr, flush=True)


def _servers(workdir: Path, data_dir: Path, bodies: Path) -> dict[str, Server]:
    python = sys.executable
    allotment_port, raw_port, litestar_port = free_port(), free_port(), free_port()
    allotment = [
        python, "-m", "allotment", "serve", "--durability", "fsync", "--data-dir", str(data_dir),
        "--api-key", KEY, "--port", str(allotment_port),
        # checkpoints and analytics snapshots off the measured path; bench_durability
        # measures the check while they run
        "--checkpoint-every", "86400", "--analytics-every", "86400",
    ]  # fmt: skip
    ceiling = [python, "-m", "bench.http.ceilings"]
    return {
        "allotment": Server("allotment", allotment, allotment_port, workdir / "allotment.log"),
        "raw_asgi": Server(
            "raw_asgi", [*ceiling, "raw", "--port", str(raw_port), "--bodies", str(bodies)],
            raw_port, workdir / "raw_asgi.log",
        ),
        "litestar": Server(
            "litestar", [*ceiling, "litestar", "--port", str(litestar_port), "--bodies",
                         str(bodies)],
            litestar_port, workdir / "litestar.log",
        ),
    }  # fmt: skip


def capture_bodies(port: int, bodies: Path, customers: int, auth: dict[str, str] = AUTH) -> None:
    """Ask allotment for a check and an event, so the ceilings answer the same bytes."""
    status, _, check = request(port, "GET", CHECK_C0, headers=auth)
    assert status == 200, (status, check)
    event = (
        b'{"eventName":"chat_completion","featureKey":"ai_chat","customerReferenceId":"c0",'
        b'"usageUnits":1830,"costInput":{"model":"gpt-4o","modelProvider":"openai",'
        b'"inputTokens":1200,"outputTokens":630}}'
    )
    headers = {**auth, "Content-Type": "application/json", "X-Idempotency-Key": "capture-0"}
    status, _, accepted = request(port, "POST", "/api/v1/client/events", event, headers)
    assert status == 201, (status, accepted)
    document = {"check": check.decode(), "event": accepted.decode(), "customers": customers}
    bodies.write_bytes(msgspec.json.encode(document))


def _wrk_args(scenario: ClosedLoop, nonce: str) -> list[str]:
    if scenario.script == "check.lua":
        return [KEY, str(scenario.customers), "api_calls"]
    return [KEY, str(scenario.customers), scenario.mode, nonce]


def _closed_run(scenario: ClosedLoop, port: int, sizes: Sizes, run: int) -> WrkRun:
    nonce = f"{scenario.name}-{run}-{secrets.token_hex(4)}"
    url = f"http://127.0.0.1:{port}"
    return run_wrk(url, scenario.script, _wrk_args(scenario, nonce), sizes.threads,
                   sizes.connections, sizes.duration_s)  # fmt: skip


def _open_command(spec: OpenLoop, rate: int, port: int, sizes: Sizes, nonce: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.http.openloop", "--port", str(port), "--kind", spec.kind,
        "--rate", str(rate), "--duration", f"{sizes.duration_s:g}",
        "--warmup", f"{sizes.warmup_s:g}", "--connections", str(sizes.connections),
        "--customers", str(sizes.customers), "--key", KEY, "--nonce", nonce,
    ]  # fmt: skip


def _open_run(spec: OpenLoop, rate: int, port: int, sizes: Sizes, run: int) -> dict[str, Any]:
    command = _open_command(spec, rate, port, sizes, f"ol-{rate}-{run}-{secrets.token_hex(4)}")
    done = subprocess.run(
        command, capture_output=True, text=True, check=False,
        timeout=sizes.warmup_s + sizes.duration_s + 60,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"open-loop generator failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout)
    return result


def _one_round(
    sizes: Sizes, servers: dict[str, Server], run: int, samples: dict[str, list[Any]]
) -> None:
    for scenario in closed_loop(sizes):
        result = _closed_run(scenario, servers[scenario.server].port, sizes, run)
        samples.setdefault(scenario.name, []).append(result)
        _log(
            f"run {run + 1}/{sizes.runs} {scenario.name}: {result.requests_per_s:,.0f} req/s, "
            f"p99 {result.latency_us.p99 / 1000:.2f} ms, non-2xx {result.errors.status}"
        )
        time.sleep(sizes.settle_s)
    for spec in open_loop(sizes):
        for rate in spec.rates:
            for server in SERVERS:
                measured = _open_run(spec, rate, servers[server].port, sizes, run)
                samples.setdefault(f"open/{spec.name}/{rate}/{server}", []).append(measured)
                latency = measured["latency_ms"]
                _log(f"run {run + 1}/{sizes.runs} open {spec.name} {rate}/s {server}: "
                     f"p50 {latency['p50']} p99 {latency['p99']} p999 {latency['p999']} ms, "
                     f"timer lag p99 {measured['timer_lag_ms']['p99']} ms")  # fmt: skip
                time.sleep(sizes.settle_s)


def _figures(sizes: Sizes, samples: dict[str, list[Any]], port: int) -> dict[str, Any]:
    closed: dict[str, Any] = {}
    for scenario in closed_loop(sizes):
        command = wrk_command(f"http://127.0.0.1:{port}", scenario.script,
                              _wrk_args(scenario, "<nonce>"), sizes.threads, sizes.connections,
                              sizes.duration_s)  # fmt: skip
        closed[scenario.name] = closed_figure(scenario, samples[scenario.name], sizes,
                                              shlex.join(command))  # fmt: skip
    ratios(closed)
    opened: dict[str, Any] = {}
    for spec in open_loop(sizes):
        for rate in spec.rates:
            by_server = {
                server: open_figure(samples[f"open/{spec.name}/{rate}/{server}"], sizes)
                for server in SERVERS
            }
            opened.setdefault(spec.name, {})[str(rate)] = open_comparison(by_server, rate)
    return {"closed_loop": closed, "open_loop": opened, "hot_key": hot_key(closed, sizes)}


def _build_state(data_dir: Path, customers: int) -> float:
    """`bench.http.state` in a process of its own: a system holds its data directory's lock
    until it is garbage, and recovery freezes the heap (runtime/heap.py), so one built here
    would keep the directory locked against the server started next. Returns the seconds."""
    command = [sys.executable, "-m", "bench.http.state", str(data_dir),
               "--customers", str(customers)]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_suite(sizes: Sizes, quick: bool) -> dict[str, Any]:
    """Build the state, start the three servers, measure, stop them, and return the figures."""
    with tempfile.TemporaryDirectory(prefix="allotment-bench-") as directory:
        workdir = Path(directory)
        data_dir = workdir / "data"
        _log(f"building {sizes.customers:,} customers in {data_dir}")
        populate_s = _build_state(data_dir, sizes.customers)
        bodies = workdir / "bodies.json"
        servers = _servers(workdir, data_dir, bodies)
        allotment = servers["allotment"]
        with running([(allotment, CHECK_C0, _READY_S["allotment"], AUTH)]):
            capture_bodies(allotment.port, bodies, sizes.customers)
            ceilings: list[tuple[Server, str, float, dict[str, str]]] = [
                (servers[name], CHECK_C0, _READY_S[name], {}) for name in ("raw_asgi", "litestar")
            ]
            with running(ceilings):
                samples: dict[str, list[Any]] = {}
                for run in range(sizes.runs):
                    _one_round(sizes, servers, run, samples)
                figures = _figures(sizes, samples, allotment.port)
                figures["batch_ingest"] = measure_batch_ingest(allotment.port, KEY, sizes)
    return {
        "sizes": msgspec.to_builtins(sizes),
        "quick": quick,
        "populate_s": round(populate_s, 1),
        "servers": {name: shlex.join(server.command) for name, server in servers.items()},
        **figures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 s runs")
    args = parser.parse_args()
    report = run_suite(QUICK if args.quick else FULL, args.quick)
    print(msgspec.json.format(msgspec.json.encode(report)).decode())
