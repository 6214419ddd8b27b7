"""The results file's machine description, the targets of issue 6, and the summary tables
that `bench.run_all` writes into bench/README.md."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.http.wrk import wrk_version

__all__ = ("machine", "summary_markdown", "targets", "update_readme")

README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- summary:start -->", "<!-- summary:end -->"


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict[str, Any]:
    """What ran the suite: CPU, memory, OS, Python, the server's libraries, wrk."""
    versions = {}
    for package in ("granian", "litestar", "msgspec", "uvloop", "anyio", "duckdb"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory": _first("/proc/meminfo", "MemTotal"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": wrk_version(),
    }


def _get(document: dict[str, Any], *path: str) -> Any:
    node: Any = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _target(name: str, value: Any, goal: str, met: bool | None, unit: str = "") -> dict[str, Any]:
    return {"target": name, "measured": value, "unit": unit, "goal": goal, "met": met}


def _http_targets(http: dict[str, Any]) -> list[dict[str, Any]]:
    check = _get(http, "closed_loop", "check") or {}
    ingest = _get(http, "closed_loop", "ingest") or {}
    p99_5k = _get(http, "open_loop", "check", "5000", "allotment", "latency_ms", "p99")
    p99_ingest = _get(http, "open_loop", "ingest", "2000", "allotment", "latency_ms", "p99")
    batch = _get(http, "batch_ingest", "events_per_s")
    hot = _get(http, "hot_key", "one_over_spread")
    rows = [
        ("HTTP check / trivial Litestar GET", check.get("ratio_to_litestar_get"), ">= 0.9", 0.9),
        ("HTTP check / raw ASGI GET (goal)", check.get("ratio_to_raw_asgi_get"), ">= 0.5", 0.5),
        ("HTTP ingest (fsync) / trivial Litestar POST", ingest.get("ratio_to_litestar_post"),
         ">= 0.8", 0.8),
        ("Batch ingest, durable events/s", batch, ">= 100000", 100_000),
        ("Hot key: 1 customer / spread customers", hot, "no collapse (informational)", None),
    ]  # fmt: skip
    out = [_target(n, v, g, None if v is None or t is None else v >= t) for n, v, g, t in rows]
    out.insert(2, _target("HTTP check p99 at 5k req/s", p99_5k, "<= 2", _le(p99_5k, 2), "ms"))
    out.append(_target("HTTP ingest p99 at 2k events/s", p99_ingest, "<= 5", _le(p99_ingest, 5),
                       "ms"))  # fmt: skip
    return out


def _le(value: Any, limit: float) -> bool | None:
    return None if value is None else bool(value <= limit)


def targets(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 6 this suite measures, its figure, and whether it is met."""
    out = _http_targets(parts.get("http") or {})
    engine = _get(parts, "engine", "median_us_per_op") or {}
    check_us, ingest_us = engine.get("check_via_shard"), engine.get("ingest_via_shard")
    out.append(_target("In-process check, median", check_us, "<= 2", _le(check_us, 2), "µs"))
    out.append(_target("In-process ingest, median", ingest_us, "<= 10", _le(ingest_us, 10), "µs"))
    durability = parts.get("durability") or {}
    for name, key in (("checkpoint", "check_p99_ratio_during_checkpoint"),
                      ("analytics snapshot", "check_p99_ratio_during_analytics")):  # fmt: skip
        value = durability.get(key)
        out.append(_target(f"Check p99 during {name} / baseline", value, "<= 2", _le(value, 2)))
    recovery = durability.get("recovery_s")
    customers = durability.get("customers")
    ran = "" if customers in (None, 1_000_000) else f" (ran {customers:,})"
    goal = f"<= 30 s at 1M customers{ran}"
    out.append(_target("Recovery", recovery, goal, _le(recovery, 30) if customers == 1_000_000
                       else None, "s"))  # fmt: skip
    key_bytes = durability.get("memory_bytes_per_remembered_key")
    out.append(_target("Memory per remembered key", key_bytes, "<= 64", _le(key_bytes, 64), "B"))
    ratios = _get(parts, "alternatives", "ratios")
    if isinstance(ratios, dict) and ratios:
        leads = all(
            (r.get("rps") or 0) > 1 for by_other in ratios.values() for r in by_other.values()
        )
        worst = min((r.get("rps") or 0) for by in ratios.values() for r in by.values())
        out.append(_target("Against Postgres and Redis: lowest allotment/other req/s", worst,
                           "> 1 at every size", leads))  # fmt: skip
    out += _scale_targets(parts.get("scale") or {})
    return out


def _scale_targets(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """bench_scale judges its own targets (per size; the 1M ones on its largest size)."""
    rows = scale.get("targets")
    if not isinstance(rows, list):
        return []
    return [{**row, "target": f"Scale: {row['target']}"} for row in rows if isinstance(row, dict)]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _targets_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| Target | Measured | Goal | Met |", "|---|---|---|---|"]
    mark = {True: "yes", False: "**no**", None: "–"}
    for row in rows:
        measured = _cell(row["measured"]) + (f" {row['unit']}" if row["measured"] is not None
                                             and row["unit"] else "")  # fmt: skip
        lines.append(f"| {row['target']} | {measured} | {row['goal']} | {mark[row['met']]} |")
    return lines


def _throughput_table(http: dict[str, Any]) -> list[str]:
    lines = [
        "| Scenario | req/s | p50 ms | p99 ms | × raw ASGI GET | × Litestar GET | "
        "× Litestar POST | customers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in (http.get("closed_loop") or {}).items():
        lines.append(
            f"| {name} | {_cell(f['requests_per_s'])} | {_cell(f['latency_ms']['p50'])} | "
            f"{_cell(f['latency_ms']['p99'])} | {_cell(f.get('ratio_to_raw_asgi_get'))} | "
            f"{_cell(f.get('ratio_to_litestar_get'))} | "
            f"{_cell(f.get('ratio_to_litestar_post'))} | {_cell(f['customers'])} |"
        )
    return lines


def _latency_table(http: dict[str, Any]) -> list[str]:
    lines = [
        "| Request | offered /s | server | p50 ms | p99 ms | p99.9 ms | achieved /s | "
        "generator lag p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by_rate in (http.get("open_loop") or {}).items():
        for rate, by_server in by_rate.items():
            for server in ("raw_asgi", "litestar", "allotment"):
                f = by_server[server]
                latency = f["latency_ms"]
                lines.append(
                    f"| {name} | {_cell(int(rate))} | {server} | {_cell(latency['p50'])} | "
                    f"{_cell(latency['p99'])} | {_cell(latency['p999'])} | "
                    f"{_cell(f['achieved_rate'])} | {_cell(f['timer_lag_ms_p99'])} |"
                )
    missed = [
        f"{name} {rate}/s"
        for name, by_rate in (http.get("open_loop") or {}).items()
        for rate, by_server in by_rate.items()
        if not by_server.get("generator_kept_rate")
    ]
    kept = f"**not** at {', '.join(missed)}." if missed else "at every rate."
    lines += ["", "The generator kept the timetable against the raw ASGI ceiling (every request "
              f"answered, at the offered rate): {kept}"]  # fmt: skip
    return lines


def _alternatives_table(alternatives: dict[str, Any]) -> list[str]:
    results = alternatives.get("results")
    if not isinstance(results, dict):
        return []
    lines = ["| events/customer | backend | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for size, by_backend in results.items():
        for backend, f in by_backend.items():
            lines.append(f"| {_cell(int(size))} | {backend} | {_cell(f.get('rps'))} | "
                         f"{_cell(f.get('p50_ms'))} | {_cell(f.get('p99_ms'))} |")  # fmt: skip
    return lines


def _mib(value: Any) -> float | None:
    return None if value is None else value / 2**20


def _scale_table(scale: dict[str, Any]) -> list[str]:
    runs = scale.get("runs")
    if not isinstance(runs, list) or not runs:
        return []
    lines = [
        "| customers | RSS B/customer | excl. keys | RSS B/key | index B/key | checkpoint s | "
        "snapshot MiB | analytics snapshot s | recovery s | B/customer after recovery | "
        "peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if "rss_per_customer_bytes" not in run:
            error = (run.get("build") or {}).get("error") or "no figures"
            lines.append(f"| {_cell(run.get('customers'))} | {error} |" + " |" * 9)
            continue
        peak = max(_get(run, "build", "rss_bytes", "peak") or 0,
                   _get(run, "recovery", "rss_bytes", "peak") or 0)  # fmt: skip
        lines.append(
            f"| {_cell(run['customers'])} | {_cell(run['rss_per_customer_bytes'])} | "
            f"{_cell(run.get('rss_per_customer_excluding_keys_bytes'))} | "
            f"{_cell(run.get('bytes_per_key'))} | {_cell(run.get('index_bytes_per_key'))} | "
            f"{_cell(run.get('checkpoint_s'))} | {_cell(_mib(run.get('snapshot_bytes')))} | "
            f"{_cell(run.get('analytics_snapshot_s'))} | {_cell(run.get('recovery_s'))} | "
            f"{_cell(run.get('recovered_rss_per_customer_bytes'))} | "
            f"{_cell(_mib(peak or None))} |"
        )
    return lines


def summary_markdown(document: dict[str, Any], name: str) -> str:
    """The summary of one results file, as Markdown."""
    parts = document.get("parts") or {}
    http = parts.get("http") or {}
    sizes = http.get("sizes") or {}
    out = [
        f"From `bench/results/{name}` (commit {document.get('commit')}, "
        f"{document.get('date')}, {_get(document, 'machine', 'cpus')} CPUs "
        f"{_get(document, 'machine', 'cpu')}); `{document.get('command')}`.",
        "",
        *_targets_table(document.get("targets") or targets(parts)),
    ]
    if http:
        out += ["", f"Closed loop (wrk -t{sizes.get('threads')} -c{sizes.get('connections')}, "
                f"{sizes.get('duration_s')} s per run, median of {sizes.get('runs')} runs):", "",
                *_throughput_table(http), "",
                f"Open loop (fixed offered rate, {sizes.get('duration_s')} s measured after "
                f"{sizes.get('warmup_s')} s warm-up, {sizes.get('connections')} connections, "
                f"median of {sizes.get('runs')} runs; latency from the scheduled send time):",
                "", *_latency_table(http)]  # fmt: skip
    alternatives = _alternatives_table(parts.get("alternatives") or {})
    if alternatives:
        out += ["", "The same check against the alternatives (bench/alternatives):", "",
                *alternatives]  # fmt: skip
    scale = parts.get("scale") or {}
    scale_table = _scale_table(scale)
    if scale_table:
        out += ["", f"Scale of state (bench/bench_scale.py; {scale.get('keys_per_customer')} "
                "remembered keys per customer; RSS after recovery includes the keys):", "",
                *scale_table]  # fmt: skip
    return "\n".join(out)


def update_readme(document: dict[str, Any], name: str, readme: Path = README) -> None:
    """Replace the text between the summary markers of bench/README.md."""
    text = readme.read_text()
    table = f"{START}\n{summary_markdown(document, name)}\n{END}"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {START} ... {END} markers")
    readme.write_text(pattern.sub(lambda _: table, text))
