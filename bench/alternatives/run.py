"""The entitlement check against the designs users would pick instead, side by side in one run.

    .venv/bin/python -m bench.alternatives.run [--quick] [--save]

Three backends behind the same Litestar front door, the same auth and the same response bytes:
(a) PostgreSQL summing the period's events per check (the Tanso reference design), (b) Redis
counters read with GET (the cache design of Autumn and Unkey), (c) allotment itself, the real
server with fsync durability. Each is populated at several events-per-customer sizes and
driven by wrk from a separate process on 127.0.0.1; each figure is the median of `--runs`
runs, interleaved so machine noise hits every backend alike. See bench/alternatives/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import anyio
import msgspec

from allotment.persistence.keys import new_key
from bench.alternatives.common import FEATURE, customer_prefix, customer_refs, pg_dsn, redis_url
from bench.alternatives.frontdoor import SETTINGS_ENV, FrontDoorSettings
from bench.alternatives.loadgen import WrkResult, run_wrk, wrk_version
from bench.alternatives.populate import (
    explain_postgres,
    populate_allotment,
    populate_postgres,
    populate_redis,
)
from bench.provenance import short_commit

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
SETUP = ROOT / "bench" / "setup.sh"
BACKENDS = ("postgres", "redis", "allotment")
FULL_SIZES = [100, 10_000, 100_000]
QUICK_SIZES = [10, 100, 1_000]
CHECK_PATH = "/api/v1/client/entitlements/{ref}/" + FEATURE
# Background jobs of allotment that would land at random inside a measured run; their cost
# is measured on its own (bench_durability: check p99 during checkpoint and analytics).
BACKGROUND_EVERY_S = 3600


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _services_up() -> bool:
    done = subprocess.run(
        ["bash", str(SETUP), "status"], capture_output=True, text=True, check=False, timeout=60
    )
    return done.returncode == 0


def _ensure_services() -> bool:
    """Start PostgreSQL and Redis through bench/setup.sh unless they answer already.
    Returns whether this run started them (and so stops them at the end)."""
    if _services_up():
        print("services: PostgreSQL, Redis and wrk are ready")
        return False
    print("services: running bench/setup.sh")
    subprocess.run(["bash", str(SETUP), "start"], check=True, timeout=1800)
    return True


def _start(name: str, command: list[str], env: dict[str, str], port: int, logs: Path) -> Server:
    log = logs / f"{name}.log"
    out: IO[bytes] = log.open("wb")
    process = subprocess.Popen(  # its own process group: granian's worker stops with it
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()
    return Server(name, port, process, log)


def _stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)


def _get(url: str, api_key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_ready(server: Server, api_key: str, ref: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    url = server.base_url + CHECK_PATH.format(ref=ref)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-4000:]}")
        try:
            status, _ = _get(url, api_key)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout_s} s:\n{server.log.read_text()}")


def _same_bytes(
    servers: dict[str, Server], api_key: str, sizes: list[int], customers: int
) -> dict[str, str]:
    """Every backend must answer each size's customers with identical bytes, and refuse a
    wrong key with identical bytes."""
    examples: dict[str, str] = {}
    refusals = {
        name: _get(server.base_url + CHECK_PATH.format(ref="n0-c0"), new_key("test"))
        for name, server in servers.items()
    }
    if len(set(refusals.values())) != 1 or next(iter(refusals.values()))[0] != 401:
        raise RuntimeError(f"a wrong key is not refused alike: {refusals}")
    for size in sizes:
        for ref in customer_refs(size, customers):
            bodies = {}
            for name, server in servers.items():
                status, body = _get(server.base_url + CHECK_PATH.format(ref=ref), api_key)
                if status != 200:
                    raise RuntimeError(f"{name} answered {status} for {ref}: {body!r}")
                bodies[name] = body
            if len(set(bodies.values())) != 1:
                raise RuntimeError(f"responses differ for {ref}: {bodies}")
            examples.setdefault(str(size), bodies["allotment"].decode())
    return examples


def _machine(pg_version: str, redis_version: str) -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "missing"

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kb / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg_version,
        "redis": redis_version,
        "wrk": wrk_version(),
        "packages": {
            name: version(name)
            for name in ("granian", "litestar", "msgspec", "uvloop", "asyncpg", "redis", "hiredis")
        },
    }


def _summary(samples: list[WrkResult]) -> dict[str, Any]:
    return {
        "rps": round(statistics.median(s.rps for s in samples)),
        "p50_ms": round(statistics.median(s.p50_ms for s in samples), 3),
        "p90_ms": round(statistics.median(s.p90_ms for s in samples), 3),
        "p99_ms": round(statistics.median(s.p99_ms for s in samples), 3),
        "p999_ms": round(statistics.median(s.p999_ms for s in samples), 3),
        "errors": sum(s.errors for s in samples),
        "samples": [msgspec.to_builtins(s) for s in samples],
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _ratios(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per size: allotment's figure over each alternative's (rps > 1 and latency < 1 mean
    allotment leads)."""
    out: dict[str, Any] = {}
    for size, by_backend in results.items():
        mine = by_backend["allotment"]
        out[size] = {
            f"allotment/{other}": {
                "rps": _ratio(mine["rps"], by_backend[other]["rps"]),
                "p50": _ratio(mine["p50_ms"], by_backend[other]["p50_ms"]),
                "p99": _ratio(mine["p99_ms"], by_backend[other]["p99_ms"]),
            }
            for other in ("postgres", "redis")
        }
    return out


def _flatness(results: dict[str, dict[str, dict[str, Any]]], sizes: list[int]) -> dict[str, Any]:
    """Per backend: the largest size's figure over the smallest's (1.0 is flat)."""
    low, high = results[str(sizes[0])], results[str(sizes[-1])]
    return {
        backend: {
            "rps": _ratio(high[backend]["rps"], low[backend]["rps"]),
            "p99": _ratio(high[backend]["p99_ms"], low[backend]["p99_ms"]),
        }
        for backend in BACKENDS
    }


def _print_table(results: dict[str, dict[str, dict[str, Any]]], ratios: dict[str, Any]) -> None:
    print()
    print(f"{'events/customer':>16} {'backend':>10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for size, by_backend in results.items():
        for backend in BACKENDS:
            r = by_backend[backend]
            print(
                f"{int(size):>16,} {backend:>10} {r['rps']:>9,} "
                f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}"
            )
        for pair, figures in ratios[size].items():
            print(
                f"{'':>16} {pair:>20}: req/s x{figures['rps']}, "
                f"p50 x{figures['p50']}, p99 x{figures['p99']}"
            )
    print()


def _servers(
    args: argparse.Namespace,
    api_key: str,
    data_dir: Path,
    logs: Path,
    period_start: datetime,
    all_refs: list[str],
) -> tuple[dict[str, Server], dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    servers: dict[str, Server] = {}
    described: dict[str, Any] = {}
    for backend in ("postgres", "redis"):
        port = _free_port()
        settings = FrontDoorSettings(
            backend=backend,
            port=port,
            api_key=api_key,
            period_start=period_start,
            customers=all_refs,
            pg_dsn=pg_dsn(),
            redis_url=redis_url(),
            pg_pool_size=args.pg_pool,
        )
        command = [sys.executable, "-m", "bench.alternatives.frontdoor"]
        servers[backend] = _start(
            backend,
            command,
            {**env, SETTINGS_ENV: msgspec.json.encode(settings).decode()},
            port,
            logs,
        )
        described[backend] = {
            "command": "python -m bench.alternatives.frontdoor",
            "client": f"asyncpg pool of {args.pg_pool}"
            if backend == "postgres"
            else "redis-py asyncio, default pool (a connection per request in flight)",
        }
    port = _free_port()
    command = [
        sys.executable, "-m", "allotment", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data_dir), "--durability", "fsync",
        "--api-key", api_key, "--checkpoint-every", str(BACKGROUND_EVERY_S),
        "--analytics-every", str(BACKGROUND_EVERY_S),
    ]  # fmt: skip
    servers["allotment"] = _start("allotment", command, env, port, logs)
    shown = [c if c != api_key else "KEY" for c in command[1:]]
    described["allotment"] = {"command": "python " + shlex.join(shown)}
    return servers, described


def _measure(
    args: argparse.Namespace, servers: dict[str, Server], api_key: str, sizes: list[int]
) -> dict[str, dict[str, list[WrkResult]]]:
    def one(backend: str, size: int, seconds: int) -> WrkResult:
        return run_wrk(
            servers[backend].base_url,
            api_key,
            customer_prefix(size),
            args.customers,
            FEATURE,
            threads=args.threads,
            connections=args.connections,
            seconds=seconds,
        )

    for size in sizes:
        for backend in BACKENDS:
            one(backend, size, args.warmup)
    samples: dict[str, dict[str, list[WrkResult]]] = {
        str(size): {backend: [] for backend in BACKENDS} for size in sizes
    }
    for round_no in range(args.runs):
        order = BACKENDS[round_no % 3 :] + BACKENDS[: round_no % 3]  # rotate who goes first
        for size in sizes:
            for backend in order:
                result = one(backend, size, args.duration)
                samples[str(size)][backend].append(result)
                print(
                    f"run {round_no + 1}/{args.runs} size {size:>7,} {backend:>9}: "
                    f"{result.rps:>9,.0f} req/s  p50 {result.p50_ms:.3f} ms  "
                    f"p99 {result.p99_ms:.3f} ms  errors {result.errors}",
                    flush=True,
                )
    return samples


def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes: list[int] = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    started_services = _ensure_services()
    api_key = new_key("test")
    now = datetime.now(UTC)
    report: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="allotment-alternatives-") as directory:
            work = Path(directory)
            print(f"populating {args.customers} customers at {sizes} events each ...", flush=True)
            period_start, allotment_s = anyio.run(
                populate_allotment, work / "data", sizes, args.customers, now
            )
            pg = anyio.run(populate_postgres, pg_dsn(), sizes, args.customers, period_start, now)
            rd = anyio.run(populate_redis, redis_url(), sizes, args.customers, period_start)
            plans = anyio.run(explain_postgres, pg_dsn(), sizes, args.customers, period_start)
            print(f"populated: allotment {allotment_s:.1f} s, postgres {pg['seconds']} s, "
                  f"redis {rd['seconds']} s", flush=True)  # fmt: skip
            all_refs = [ref for size in sizes for ref in customer_refs(size, args.customers)]
            servers, described = _servers(
                args, api_key, work / "data", work, period_start, all_refs
            )
            try:
                for server in servers.values():
                    _wait_ready(server, api_key, all_refs[0])
                examples = _same_bytes(servers, api_key, sizes, args.customers)
                print("responses: byte-identical across backends (every customer; 401)", flush=True)
                samples = _measure(args, servers, api_key, sizes)
            finally:
                for server in servers.values():
                    _stop(server)
        results = {
            size: {backend: _summary(runs) for backend, runs in by_backend.items()}
            for size, by_backend in samples.items()
        }
        ratios = _ratios(results)
        report = {
            "benchmark": "alternatives",
            "command": ".venv/bin/python -m bench.alternatives.run " + shlex.join(sys.argv[1:]),
            "commit": short_commit(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "machine": _machine(pg["server_version"], rd["server_version"]),
            "load": {
                "tool": "wrk (closed loop), a separate process on 127.0.0.1",
                "request": f"GET {CHECK_PATH} with a Bearer key, rotating over the customers",
                "threads": args.threads,
                "connections": args.connections,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "runs": args.runs,
                "statistic": "median over runs of each figure; runs interleaved across backends",
                "customers_per_size": args.customers,
            },
            "backends": described,
            "populate": {
                "period_start": period_start.isoformat(),
                "events_total": sum(sizes) * args.customers,
                "allotment_s": round(allotment_s, 1),
                "postgres": pg,
                "redis": rd,
            },
            "postgres_sum_query": plans,
            "response_examples": examples,
            "results": results,
            "ratios": ratios,
            "flatness_largest_over_smallest": _flatness(results, sizes),
        }
        _print_table(results, ratios)
    finally:
        if started_services:
            subprocess.run(["bash", str(SETUP), "stop"], check=False, timeout=120)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 s runs: a smoke test")
    parser.add_argument("--save", action="store_true", help="write the JSON to bench/results/")
    parser.add_argument("--sizes", type=int, nargs="+", help="events per customer")
    parser.add_argument("--customers", type=int, default=10, help="customers per size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, help="whole seconds per run (10; quick 2)")
    parser.add_argument("--warmup", type=int, help="whole seconds of warm-up (3; quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--pg-pool", type=int, default=8, help="asyncpg pool size")
    return parser


if __name__ == "__main__":
    arguments = _parser().parse_args()
    if arguments.duration is None:
        arguments.duration = 2 if arguments.quick else 10
    if arguments.warmup is None:
        arguments.warmup = 1 if arguments.quick else 3
    report = main(arguments)
    text = msgspec.json.format(msgspec.json.encode(report)).decode()
    if arguments.save:
        RESULTS.mkdir(exist_ok=True)
        suffix = "-quick" if arguments.quick else ""
        name = f"{datetime.now(UTC):%Y-%m-%d}-{report['commit']}-alternatives{suffix}.json"
        (RESULTS / name).write_text(text + "\n")
        print(f"wrote bench/results/{name}")
    else:
        print(text)
