"""Which commit a results file was measured at."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ("short_commit",)

ROOT = Path(__file__).resolve().parents[1]  # the repository


def short_commit() -> str:
    """The short hash of the repository's HEAD, or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip() or "unknown"
