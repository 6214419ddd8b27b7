"""Closed-loop load with wrk: a separate process on 127.0.0.1, bounded by its duration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import msgspec

__all__ = ("WrkResult", "run_wrk", "wrk_version")

SCRIPT = Path(__file__).with_name("rotate.lua")
_MARK = "WRK_JSON "


class WrkErrors(msgspec.Struct, frozen=True):
    connect: int
    read: int
    write: int
    status: int  # non-2xx/3xx responses
    timeout: int

    @property
    def total(self) -> int:
        return self.connect + self.read + self.write + self.status + self.timeout


class WrkLatency(msgspec.Struct, frozen=True):
    p50: float
    p90: float
    p99: float
    p999: float
    mean: float
    max: float


class _WrkLine(msgspec.Struct, frozen=True):
    requests: int
    duration_us: int
    errors: WrkErrors
    latency_us: WrkLatency


class WrkResult(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int


def wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "missing"
    done = subprocess.run([path, "-v"], capture_output=True, text=True, check=False, timeout=10)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def run_wrk(
    base_url: str,
    api_key: str,
    prefix: str,
    count: int,
    feature: str,
    *,
    threads: int,
    connections: int,
    seconds: int,
) -> WrkResult:
    """One wrk run of `seconds` (wrk takes whole seconds) rotating over `count` customers
    named `<prefix><i>`."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(SCRIPT),
        base_url,
        "--",
        api_key,
        prefix,
        str(count),
        feature,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    line = msgspec.json.decode(lines[-1][len(_MARK) :], type=_WrkLine)
    seconds_taken = line.duration_us / 1e6
    lat = line.latency_us
    return WrkResult(
        requests=line.requests,
        seconds=round(seconds_taken, 3),
        rps=round(line.requests / seconds_taken, 1),
        p50_ms=lat.p50 / 1000,
        p90_ms=lat.p90 / 1000,
        p99_ms=lat.p99 / 1000,
        p999_ms=lat.p999 / 1000,
        max_ms=lat.max / 1000,
        errors=line.errors.total,
    )
