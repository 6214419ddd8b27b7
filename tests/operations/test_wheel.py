"""Issue 13, items 1 and 5: the built wheel installs into a fresh venv and serves from another
directory (OPS-P1, OPS-P2), and the container's entry command works as the Dockerfile runs it
(OPS-P11).

Lean on purpose (the suite must stay well under 15 minutes): the wheel is built without an
isolated build environment (hatchling is in the test extra), and the fresh venv gets only
allotment from the wheel. Its dependencies come from the test run's own site-packages through
a `.pth` line. That still proves the wheel: a `.pth` line adds a directory to the end of
sys.path and processes no `.pth` file inside it, so the editable install's hook (which points
at the source tree) never runs, the venv's own site-packages comes first, PYTHONPATH is
dropped, and the test asserts `allotment` is imported from the venv. A file missing from the
wheel (the demo catalog, the prices, a module) fails the start or the check.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from allotment import __version__
from tests.operations.served import Served
from tests.reliability.server import free_port

REPO = Path(__file__).resolve().parents[2]


def _run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False,
        env=env, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip
    assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this checkout installed by pip."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", dist, REPO)  # fmt: skip
    (wheel,) = dist.glob("allotment-*.whl")
    assert wheel.name == f"allotment-{__version__}-py3-none-any.whl"
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         wheel)  # fmt: skip
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
                .stdout.strip())  # fmt: skip
    (site / "_allotment_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_wheel_installs_and_serves_from_another_directory(venv: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(venv / "bin" / "python", "-c", "import allotment; print(allotment.__file__)",
                 cwd=elsewhere).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the source tree
    version = _run(venv / "bin" / "allotment", "--version", cwd=elsewhere)
    assert version.stdout == f"allotment {__version__}\n"

    server = Served(
        tmp_path / "server.log", "--port", str(free_port()), "--data-dir", "state",
        command=[str(venv / "bin" / "allotment"), "serve"], cwd=elsewhere, installed=True,
    )  # fmt: skip
    try:
        assert "demo_catalog.toml (built into allotment) (5 plans)" in server.output()
        _pass_a_check(server.url, server.sandbox_key())
        _console_ships(server.url)
        assert (elsewhere / "state" / "api_keys.json").exists()  # relative to where it ran
    finally:
        assert server.stop() == 0


def _pass_a_check(url: str, key: str) -> None:
    api = f"{url}/api/v1/client"
    headers = {"Authorization": f"Bearer {key}"}
    customer = {"customerReferenceId": "wheel_1", "firstName": "W", "lastName": "Heel",
                "email": "w@example.com"}  # fmt: skip
    created = httpx.post(f"{api}/customers", json=customer, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    check = httpx.get(f"{api}/entitlements/wheel_1/api_calls", headers=headers, timeout=30)
    assert check.status_code == 200, check.text
    assert check.json()["data"]["featureKey"] == "api_calls"


def _console_ships(url: str) -> None:
    """The console's templates and static files are package data (CON-1): the wheel has them."""
    page = httpx.get(f"{url}/console/sign-in", timeout=30)
    assert page.status_code == 200 and "Admin API key" in page.text
    for name in ("console.css", "htmx-2.0.11.min.js", "htmx-LICENSE.txt"):
        assert httpx.get(f"{url}/console/static/{name}", timeout=30).status_code == 200, name


def _dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """The final stage's ENV, its ENTRYPOINT + CMD, and its HEALTHCHECK command."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in shlex.split(line[4:])))
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M)[1])  # type: ignore[index]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final, re.M)[1])  # type: ignore[index]
    health = json.loads(re.search(r"HEALTHCHECK .* CMD (\[.*\])$", final, re.M)[1])  # type: ignore[index]
    return env, entry + cmd, health


def test_the_container_entry_command(venv: Path, tmp_path: Path) -> None:
    """The image's ENTRYPOINT + CMD with the image's environment, as `docker run` starts it,
    and then its HEALTHCHECK command. Outside a container /data and port 8080 are not ours,
    so those two variables point at a temporary directory and a free port; every other
    setting is the image's."""
    env, command, health = _dockerfile()
    assert command == ["allotment", "serve"]
    assert env["ALLOTMENT_HOST"] == "0.0.0.0"  # reachable through the published port
    assert env["ALLOTMENT_DATA_DIR"] == "/data"
    env.update(ALLOTMENT_DATA_DIR=str(tmp_path / "data"), ALLOTMENT_PORT=str(free_port()))
    server = Served(
        tmp_path / "container.log", *command[1:], env=env,
        command=[str(venv / "bin" / command[0])], cwd=tmp_path, installed=True,
    )  # fmt: skip
    try:
        assert server.url == f"http://0.0.0.0:{env['ALLOTMENT_PORT']}"
        _pass_a_check(f"http://127.0.0.1:{env['ALLOTMENT_PORT']}", server.sandbox_key())
        assert health[0] == "python"
        probe_env = {**os.environ, **env}
        probe_env.pop("PYTHONPATH", None)
        done = subprocess.run([str(venv / "bin" / "python"), *health[1:]], env=probe_env,
                              timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0  # the health check passes: /health/ready answered 200
    finally:
        assert server.stop() == 0
