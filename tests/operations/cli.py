"""Running the `allotment` command as an operator would, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def allotment(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m allotment ARGS` to its end; it must finish by itself (a bound, not a goal).
    ALLOTMENT_* variables of the test run are dropped, so only `env` configures it."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ALLOTMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "allotment", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **(env or {})},
        cwd=cwd,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused start prints (OPS-P3): nothing on stdout, no traceback."""
    assert result.returncode != 0, result
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
