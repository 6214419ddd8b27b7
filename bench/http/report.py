"""What every HTTP bench writes: the run's provenance (command, commit, date, machine), then
its measurements, printed and, with `--save NAME`, kept as bench/results/<date>-NAME.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.http.wrk import wrk_version
from bench.provenance import short_commit

__all__ = ("provenance", "publish")

RESULTS = Path(__file__).resolve().parents[1] / "results"


def provenance(module: str) -> dict[str, Any]:
    """Where a result came from: enough to rerun it and to know what it ran on."""
    return {
        "benchmark": module,
        "command": " ".join([f"python -m {module}", *sys.argv[1:]]),
        "commit": short_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "wrk": wrk_version(),
        },
    }


def publish(result: dict[str, Any], save: str | None) -> None:
    print(msgspec.json.format(msgspec.json.encode(result)).decode())
    if save:
        path = RESULTS / f"{datetime.now(UTC).date()}-{save}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
