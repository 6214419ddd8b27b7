"""Medians over runs, and the ratios of every figure to the framework ceilings."""

from __future__ import annotations

import statistics
from typing import Any

from bench.http.scenarios import ClosedLoop, Sizes
from bench.http.wrk import WrkRun

__all__ = ("SERVERS", "closed_figure", "hot_key", "open_comparison", "open_figure", "ratios")

SERVERS = ("raw_asgi", "litestar", "allotment")

_CEILINGS = {
    "get": {"raw_asgi": "raw_asgi_get", "litestar": "litestar_get"},
    "post": {"raw_asgi": "raw_asgi_post", "litestar": "litestar_post"},
}


def _median(values: list[float], digits: int = 3) -> float:
    return round(statistics.median(values), digits)


def closed_figure(
    scenario: ClosedLoop, runs: list[WrkRun], sizes: Sizes, command: str
) -> dict[str, Any]:
    """The median over `runs` of one wrk scenario, with its parameters."""
    return {
        "server": scenario.server,
        "request": scenario.request,
        "kind": scenario.kind,
        "customers": scenario.customers,
        "connections": sizes.connections,
        "threads": sizes.threads,
        "duration_s": sizes.duration_s,
        "runs": len(runs),
        "command": command,
        "requests_per_s": round(statistics.median(r.requests_per_s for r in runs)),
        "latency_ms": {
            name: _median([getattr(r.latency_us, name) / 1000 for r in runs])
            for name in ("p50", "p90", "p99", "p999")
        },
        "errors": sum(
            r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout for r in runs
        ),
        "non_2xx": sum(r.errors.status for r in runs),
        "samples_requests_per_s": [round(r.requests_per_s) for r in runs],
    }


def ratios(figures: dict[str, dict[str, Any]]) -> None:
    """Add to each figure its throughput over the GET ceilings, and, for POST figures, over
    the POST ceilings (same request bytes)."""
    for figure in figures.values():
        rps = figure["requests_per_s"]
        for ceiling, name in _CEILINGS["get"].items():
            figure[f"ratio_to_{ceiling}_get"] = round(rps / figures[name]["requests_per_s"], 3)
        if figure["kind"] == "post":
            for ceiling, name in _CEILINGS["post"].items():
                figure[f"ratio_to_{ceiling}_post"] = round(rps / figures[name]["requests_per_s"], 3)


def open_figure(runs: list[dict[str, Any]], sizes: Sizes) -> dict[str, Any]:
    """The median over `runs` of one open-loop rate against one server. The CDF kept is the
    one of the run whose p99 is the median."""
    by_p99 = sorted(runs, key=lambda r: float(r["latency_ms"]["p99"] or float("inf")))
    middle = by_p99[len(by_p99) // 2]
    return {
        "rate": runs[0]["rate"],
        "duration_s": sizes.duration_s,
        "warmup_s": sizes.warmup_s,
        "connections": sizes.connections,
        "runs": len(runs),
        "latency_ms": {
            name: _median([float(r["latency_ms"][name] or float("inf")) for r in runs])
            for name in ("p50", "p90", "p99", "p999", "max")
        },
        "timer_lag_ms_p99": _median([float(r["timer_lag_ms"]["p99"] or 0.0) for r in runs]),
        "achieved_rate": _median([r["achieved_rate"] for r in runs], 1),
        "incomplete": sum(r["incomplete"] for r in runs),
        "non_2xx": sum(
            count for r in runs for status, count in r["statuses"].items() if status[0] != "2"
        ),
        "samples_latency_ms": [
            {name: r["latency_ms"][name] for name in ("p50", "p99", "p999")} for r in runs
        ],
        "cdf_ms": middle["cdf_ms"],
    }


def open_comparison(by_server: dict[str, Any], rate: int) -> dict[str, Any]:
    """One offered rate against the three servers: allotment's p99 over each ceiling's, and
    whether the generator kept the timetable against the raw ceiling (every request answered,
    at the offered rate), the proof that it is not the bottleneck at this rate."""
    allotment_p99 = by_server["allotment"]["latency_ms"]["p99"]
    floor = by_server["raw_asgi"]
    return {
        **by_server,
        "p99_ratio_to_raw_asgi": round(allotment_p99 / floor["latency_ms"]["p99"], 2),
        "p99_ratio_to_litestar": round(
            allotment_p99 / by_server["litestar"]["latency_ms"]["p99"], 2
        ),
        "generator_kept_rate": floor["incomplete"] == 0 and floor["achieved_rate"] >= 0.99 * rate,
    }


def hot_key(closed: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """64 connections on one customer against 64 spread over `sizes.hot_spread` customers."""
    one = closed["hot_key_one_customer"]["requests_per_s"]
    spread = closed["hot_key_spread"]["requests_per_s"]
    return {
        "one_customer_requests_per_s": one,
        "spread_requests_per_s": spread,
        "spread_customers": sizes.hot_spread,
        "connections": sizes.connections,
        "duration_s": sizes.duration_s,
        "one_over_spread": round(one / spread, 3),
    }
