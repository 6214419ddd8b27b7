"""The whole benchmark suite, in sequence, with one command.

    .venv/bin/python -m bench.run_all [--quick] [--save] [--parts engine,http,...]
    .venv/bin/python -m bench.run_all --from bench/results/<file>.json   # plots + README table

Parts, each in its own process: `engine` (bench.bench_engine, in-process turns), `http`
(bench.http.suite: allotment over HTTP against the framework ceilings), `durability`
(bench.bench_durability), when the module exists, `alternatives` (bench.alternatives.run: the
same check on PostgreSQL and Redis), and `scale` (bench.bench_scale: RSS per customer and per
remembered idempotency key, checkpoint, analytics snapshot and recovery times at 100k and 1M
customers; the 1M run is the long one). Each part prints one JSON document on stdout, which
is embedded in the results document with the machine description, the command and the
targets of issue 6.

`--save` writes `bench/results/<date>-<short commit>.json` and the PNG plots under
`bench/results/plots/`, and regenerates the summary table in `bench/README.md`. With
`--quick` (tiny sizes, 2 s runs: a smoke test) the file is `...-quick.json`, the plots go to
`bench/results/plots/quick/` and the README is left alone. `--out DIR` writes there instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.plots import write_plots
from bench.report import machine, summary_markdown, targets, update_readme

__all__ = ("main",)

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]
PARTS = ("engine", "http", "durability", "alternatives", "scale")
_QUICK_ARGS = {
    "engine": ["--customers", "1000", "--ops", "2000", "--rounds", "3"],
    "http": ["--quick"],
    "durability": ["--customers", "2000"],
    "alternatives": ["--quick"],
    "scale": ["--customers", "2000"],  # the full run: 100k and 1M customers
}
_MODULES = {
    "engine": "bench.bench_engine",
    "http": "bench.http.suite",
    "durability": "bench.bench_durability",
    "alternatives": "bench.alternatives.run",
    "scale": "bench.bench_scale",
}


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=ROOT)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _json_document(stdout: str) -> dict[str, Any]:
    """The JSON document a part printed: from its first line that opens one, to the end (a
    part may print progress before it)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("{"):
            try:
                document: dict[str, Any] = json.loads("\n".join(lines[index:]))
            except json.JSONDecodeError:
                continue
            return document
    raise ValueError("no JSON document in the output")


def _run_part(part: str, quick: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", _MODULES[part], *(_QUICK_ARGS[part] if quick else [])]
    print(f"[run_all] {part}: {shlex.join(command)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    captured = []
    for line in process.stdout:  # progress goes on to the terminal as it comes
        captured.append(line)
        if not line.startswith((" ", "{", "}", "]")):
            print(f"[{part}] {line}", end="", file=sys.stderr, flush=True)
    code = process.wait()
    seconds = round(time.monotonic() - started, 1)
    if code != 0:
        return {"error": f"exit status {code}", "seconds": seconds}
    document = _json_document("".join(captured))
    document["seconds"] = seconds
    document.setdefault("command", shlex.join(["python", "-m", *command[2:]]))
    return document


def _available(part: str) -> bool:
    try:
        return importlib.util.find_spec(_MODULES[part]) is not None
    except ModuleNotFoundError:
        return False


def run(parts: list[str], quick: bool, argv: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for part in parts:
        if not _available(part):
            results[part] = {"skipped": f"{_MODULES[part]} is not in this checkout"}
            continue
        results[part] = _run_part(part, quick)
    return {
        "suite": "allotment benchmarks (issue 6)",
        "command": shlex.join([".venv/bin/python", "-m", "bench.run_all", *argv]),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--", "src", "bench")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "targets": targets(results),
        "parts": results,
    }


def _save(document: dict[str, Any], out: Path | None, quick: bool) -> Path:
    directory = out or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if quick else ""
    path = directory / f"{document['date'][:10]}-{document['commit']}{suffix}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    plots = directory / "plots" / ("quick" if quick else "")
    for written in write_plots(document, plots):
        print(f"[run_all] wrote {written}", file=sys.stderr)
    if out is None and not quick:
        update_readme(document, path.name)
        print("[run_all] updated the summary table in bench/README.md", file=sys.stderr)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 s runs: smoke test")
    parser.add_argument("--save", action="store_true", help="write results, plots, README table")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    parser.add_argument("--out", type=Path, help="write results and plots here instead")
    parser.add_argument(
        "--from", dest="source", type=Path, help="no run: plots and README table from this file"
    )
    args = parser.parse_args(argv)
    if args.source is not None:
        document = json.loads(args.source.read_text())
        quick = bool(document.get("quick"))
        write_plots(document, (args.out or RESULTS) / "plots" / ("quick" if quick else ""))
        if args.out is None and not quick:
            update_readme(document, args.source.name)
        print(summary_markdown(document, args.source.name))
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    document = run(parts, args.quick, argv)
    name = "(not saved)"
    if args.save:
        name = _save(document, args.out, args.quick).name
        print(f"[run_all] wrote {name}", file=sys.stderr)
    else:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    print(summary_markdown(document, name), file=sys.stderr)
    failed = [p for p, r in document["parts"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
