"""Closed-loop throughput with wrk: `connections` clients, each sending its next request as
soon as the previous answer arrives, for `duration_s` seconds.

The Lua scripts under `lua/` build the requests (rotating customers, unique idempotency keys)
and print a `BENCH_JSON` line with exact counts and latency percentiles.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import msgspec

__all__ = ("LUA", "WrkLatency", "WrkRun", "run_wrk", "wrk_version")

ROOT = Path(__file__).resolve().parents[2]  # wrk runs here, so commands read repo-relative
LUA = Path("bench", "http", "lua")
_MARKER = "BENCH_JSON "


class WrkErrors(msgspec.Struct, kw_only=True):
    connect: int
    read: int
    write: int
    status: int  # responses that were not 2xx or 3xx
    timeout: int


class WrkLatency(msgspec.Struct, kw_only=True):
    mean: float
    stdev: float
    max: int
    p50: int
    p90: int
    p99: int
    p999: int


class _Report(msgspec.Struct, kw_only=True):
    requests: int
    duration_us: int
    bytes: int
    errors: WrkErrors
    latency_us: WrkLatency
    item_failures: int


class WrkRun(msgspec.Struct, kw_only=True):
    """One wrk run: requests per second and latency (µs) as wrk saw them."""

    requests_per_s: float
    requests: int
    duration_s: float
    errors: WrkErrors
    latency_us: WrkLatency
    item_failures: int  # batch.lua: events of a batch answered neither 201 nor 200


def wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "not installed"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def wrk_command(
    url: str, script: str, args: Sequence[str], threads: int, connections: int, duration_s: float
) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA / script),
        url,
        "--",
        *args,
    ]


def run_wrk(
    url: str, script: str, args: Sequence[str], threads: int, connections: int, duration_s: float
) -> WrkRun:
    """Run wrk once against `url` with `script` (a file under `lua/`) and its arguments.

    Raises:
        RuntimeError: wrk failed or printed no report.
    """
    command = wrk_command(url, script, args, threads, connections, duration_s)
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=duration_s + 60, cwd=ROOT
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    report = msgspec.json.decode(lines[-1][len(_MARKER) :], type=_Report)
    duration = report.duration_us / 1e6
    return WrkRun(
        requests_per_s=report.requests / duration,
        requests=report.requests,
        duration_s=duration,
        errors=report.errors,
        latency_us=report.latency_us,
        item_failures=report.item_failures,
    )
