"""Ray is optional (SCL-30): the default server, and everything it imports, runs without it.
The import-linter contract in pyproject.toml forbids the import statically; this proves it
at run time, in a fresh interpreter that builds and serves the default app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import sys
from pathlib import Path
from litestar.testing import TestClient
from allotment import cli, scale_out  # noqa: F401  the CLI knows `--shards`; Ray stays out
from allotment.config import Settings
from allotment.wiring import build_app

app = build_app(Settings(data_dir=Path(sys.argv[1]), api_keys=["sk_test_" + "o" * 32]))
with TestClient(app) as client:
    assert client.get("/health/ready").status_code == 200
    headers = {"Authorization": "Bearer sk_test_" + "o" * 32}
    assert client.get("/api/v1/client/plans", headers=headers).status_code == 200
loaded = sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))
print(loaded)
"""


def test_the_default_server_never_imports_ray(tmp_path: Path) -> None:
    """SCL-30: building and serving the one-process app loads no `ray` module."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
