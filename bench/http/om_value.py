"""OpenMeter's entitlement value over HTTP against the Tanso check (issue 17, "Performance"), in
one run on one server (fsync):

- `value`: `GET /api/v1/customers/c<i>/entitlements/api_calls/value` (a metered entitlement
  with a grant) against `check`: `GET /api/v1/client/entitlements/c<i>/api_calls`, both over
  `--customers` customers: target value req/s >= 0.9x the check's, value p99 <= 2x the
  check's p99;
- `access`: `GET /api/v1/customers/c<i>/access` over the `--access-customers` customers
  holding 20 entitlements, against `value_20`, the value over those same customers: target
  one access costs <= 3x one value (value req/s / access req/s).

Closed loop, 64 connections, 2 wrk threads; rounds are interleaved (one run of every
scenario, then the next round), each figure is the median of the rounds, and the load
average is recorded before and after: the machine may be shared.

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m bench.http.om_value \
        [--customers 10000] [--access-customers 1000] [--rounds 5] [--duration 4] [--save NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec

from allotment.config import Settings
from allotment.domain.catalog import Catalog, Feature, feature_id
from allotment.domain.context import TurnContext
from allotment.domain.meter_rules import define_feature
from allotment.domain.om_commands import CreateEntitlement, IssueGrant, OpenMeterCommand
from allotment.domain.om_state import EntitlementKind
from allotment.domain.replies import Rejected
from allotment.http.openmeter.om_targets import customer_target
from allotment.runtime.local_shard import LocalShard
from allotment.wiring import build_system
from bench.bench_engine import _commit
from bench.http.reservations import AUTH, CONNECTIONS, KEY, THREADS, _median, _server
from bench.http.servers import running
from bench.http.state import ENVIRONMENT, _populate, customer_ref
from bench.http.wrk import ROOT, wrk_command, wrk_version

RESULTS = Path(__file__).resolve().parents[1] / "results"
EXTRA_FEATURES = [f"bench_f{n}" for n in range(19)]  # with api_calls: 20 entitlements
# name -> (path prefix, path suffix, customers: "all" or "access")
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "check": ("/api/v1/client/entitlements/c", "/api_calls", "all"),
    "value": ("/api/v1/customers/c", "/entitlements/api_calls/value", "all"),
    "value_20": ("/api/v1/customers/c", "/entitlements/api_calls/value", "access"),
    "access": ("/api/v1/customers/c", "/access", "access"),
}


def _log(message: str) -> None:
    print(f"[om_value] {message}", file=sys.stderr, flush=True)


async def _om(shard: LocalShard, customer: str, command: OpenMeterCommand) -> None:
    reply = await shard.openmeter_turn(customer_target(customer), command, lambda s, r, n: r)
    assert not isinstance(reply, Rejected), reply


async def _entitlements(shard: LocalShard, customers: int, access_customers: int) -> None:
    """Every customer: a hard metered entitlement to api_calls with a grant it never spends;
    the first `access_customers` also 19 boolean and static ones (20 in all)."""
    for key in EXTRA_FEATURES:
        feature = Feature(id=feature_id(key), key=key, name=key)

        def change(catalog: Catalog, ctx: TurnContext, feature: Feature = feature) -> Any:
            return define_feature(catalog, feature, ctx.now)

        await shard.change_catalog(change)
    now = shard._clock.now()
    for i in range(customers):
        ref = customer_ref(i)
        await _om(shard, ref, CreateEntitlement(feature_key="api_calls",
                                                kind=EntitlementKind.METERED,
                                                usage_period="MONTH"))  # fmt: skip
        await _om(shard, ref, IssueGrant(entitlement="api_calls", amount=Decimal(10**9),
                                         effective_at=now))  # fmt: skip
        if i < access_customers:
            for n, key in enumerate(EXTRA_FEATURES):
                kind = EntitlementKind.STATIC if n % 2 else EntitlementKind.BOOLEAN
                config = '{"tier": "gold"}' if n % 2 else None
                await _om(shard, ref, CreateEntitlement(feature_key=key, kind=kind,
                                                        config=config))  # fmt: skip
        if i % 2000 == 0:
            await shard.journal.flush()


async def build(data_dir: Path, customers: int, access_customers: int) -> float:
    started = time.perf_counter()
    settings = Settings(
        data_dir=data_dir, durability="none", snapshot_every_s=1e9, analytics_every_s=1e9
    )
    system = build_system(settings)
    async with system.running():
        shard = system.shard(ENVIRONMENT)
        await _populate(shard, customers)
        await _entitlements(shard, customers, access_customers)
        await system.checkpoint_all()
    return time.perf_counter() - started


def _wrk(port: int, prefix: str, suffix: str, customers: int, duration_s: float) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"
    arguments = [KEY, str(customers), prefix, suffix]
    command = wrk_command(url, "get.lua", arguments, THREADS, CONNECTIONS, duration_s)
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=duration_s + 60
    )
    lines = dict(
        line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith("BENCH_")
    )
    if done.returncode != 0 or "BENCH_JSON" not in lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    report = json.loads(lines["BENCH_JSON"])
    seconds = report["duration_us"] / 1e6
    return {
        "per_s": round(report["requests"] / seconds, 1),
        "non_2xx": report["errors"]["status"],
        "denied": 0,
        "latency_p50_ms": report["latency_us"]["p50"] / 1000,
        "latency_p99_ms": report["latency_us"]["p99"] / 1000,
    }


def measure(
    customers: int, access_customers: int, rounds: int, duration_s: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="allotment-om-value-") as directory:
        workdir = Path(directory)
        _log(f"building {customers:,} customers")
        command = [sys.executable, "-m", "bench.http.om_value", "--populate",
                   str(workdir / "data"), "--customers", str(customers),
                   "--access-customers", str(access_customers)]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        populate_s = time.perf_counter() - started
        server = _server(workdir, workdir / "data")
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
        load_before = os.getloadavg()
        probe = "/api/v1/customers/c0/entitlements/api_calls/value"
        with running([(server, probe, 600.0, AUTH)]):
            for round_no in range(rounds):
                for name, (prefix, suffix, who) in SCENARIOS.items():
                    count = customers if who == "all" else access_customers
                    result = _wrk(server.port, prefix, suffix, count, duration_s)
                    samples[name].append(result)
                    p99, failed = result["latency_p99_ms"], result["non_2xx"]
                    _log(f"round {round_no + 1}/{rounds} {name}: {result['per_s']:,.0f}/s "
                         f"p99 {p99:.2f} ms (non-2xx {failed})")  # fmt: skip
                    time.sleep(0.5)
        load_after = os.getloadavg()
    return _figures(samples, populate_s, server.command, load_before, load_after)


def _figures(
    samples: dict[str, list[dict[str, Any]]],
    populate_s: float,
    server_command: list[str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    figures = {name: _median(runs) for name, runs in samples.items()}
    check, value = figures["check"], figures["value"]
    return {
        "populate_s": round(populate_s, 1),
        "server": shlex.join(server_command),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "scenarios": figures,
        "targets": {
            "value_over_check_throughput": {
                "measured": round(value["median_per_s"] / check["median_per_s"], 3),
                "goal": ">= 0.9",
            },
            "value_p99_over_check_p99": {
                "measured": round(
                    value["median_latency_p99_ms"] / check["median_latency_p99_ms"], 3
                ),
                "goal": "<= 2",
            },
            "access_20_cost_over_value": {
                "measured": round(
                    figures["value_20"]["median_per_s"] / figures["access"]["median_per_s"], 3
                ),
                "goal": "<= 3",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--access-customers", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--populate", type=Path, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--save", metavar="NAME", help="write bench/results/<date>-NAME.json")
    args = parser.parse_args()
    if args.populate is not None:
        anyio.run(build, args.populate, args.customers, args.access_customers)
        return
    result = {
        "benchmark": "bench.http.om_value",
        "command": " ".join(["python -m bench.http.om_value", *sys.argv[1:]]),
        "commit": _commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "wrk": wrk_version(),
        },
        "connections": CONNECTIONS,
        "wrk_threads": THREADS,
        "customers": args.customers,
        "access_customers": args.access_customers,
        "rounds": args.rounds,
        "duration_s": args.duration,
        **measure(args.customers, args.access_customers, args.rounds, args.duration),
    }
    print(msgspec.json.format(msgspec.json.encode(result)).decode())
    if args.save:
        path = RESULTS / f"{datetime.now(UTC).date()}-{args.save}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
