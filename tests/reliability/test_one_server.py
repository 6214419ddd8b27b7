"""One server per data directory and per port (issue 10, scenario 6), with the real CLI.

Before: a second `allotment serve` on the same port started and shared it through granian's
SO_REUSEPORT (requests alternated, half got 401), and two servers on one data directory both
accepted writes and left a journal that refused to start.
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.server import KEY, Server, free_port

C = "/api/v1/client"
OTHER_KEY = "sk_test_" + "other" * 8


def _second(data_dir: Path, port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a second `allotment serve` to its end (it must refuse and exit by itself)."""
    command = [sys.executable, "-m", "allotment", "serve", "--data-dir", str(data_dir),
               "--port", str(port), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _all_served(server: Server, requests: int = 40) -> list[int]:
    """Statuses of authenticated requests, each on a new connection (so the kernel would
    spread them over every listener sharing the port)."""
    statuses = []
    for _ in range(requests):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {KEY}"}
            statuses.append(client.get(f"{C}/plans", headers=headers).status_code)
    return statuses


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One first server for the tests that only try to join it (a second server on its data
    directory or its port, a socket on its port): each attempt is refused, which changes
    nothing the first server holds, and each test checks that it still serves every request.
    The test that kills a server starts its own."""
    first = Server(tmp_path_factory.mktemp("first"))
    yield first
    first.stop()


def test_a_second_server_on_the_same_data_directory_is_refused(
    server: Server, tmp_path: Path
) -> None:
    """Scenario 6: one clear line naming the holder's PID, a non-zero status, no traceback."""
    second = _second(server.data_dir, free_port(), "--api-key", OTHER_KEY)
    assert second.returncode != 0
    line = f"allotment: data directory {server.data_dir} in use by PID {server.process.pid}"
    assert second.stderr.strip() == line
    assert "Traceback" not in second.stdout + second.stderr
    assert _all_served(server) == [200] * 40


def test_a_second_server_on_the_same_port_is_refused(server: Server, tmp_path: Path) -> None:
    """Scenario 6: the port in use is one line; the first server keeps every request (no 401
    from a server holding another key), and the refused start mints no sandbox key."""
    elsewhere = tmp_path / "second"
    second = _second(elsewhere, server.port)
    assert second.returncode != 0
    assert second.stderr.strip() == f"allotment: port {server.port} on 127.0.0.1 is in use"
    assert "Traceback" not in second.stdout + second.stderr
    assert "sandbox key" not in second.stdout
    assert not (elsewhere / "api_keys.json").exists()
    assert _all_served(server) == [200] * 40


def test_the_listening_socket_cannot_be_shared(server: Server) -> None:
    """Scenario 6: nothing joins the port with SO_REUSEPORT while the server listens (granian
    alone sets it on every worker socket)."""
    with socket.socket() as intruder:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError, match="in use") as refused:
            intruder.bind(("127.0.0.1", server.port))
    assert refused.value.errno == errno.EADDRINUSE


def test_the_data_directory_is_free_again_after_a_kill(tmp_path: Path) -> None:
    """The lock is the kernel's: SIGKILL releases it, and the next start needs no cleanup."""
    Server(tmp_path).kill()
    restarted = Server(tmp_path)
    try:
        assert _all_served(restarted, requests=3) == [200] * 3
    finally:
        restarted.stop()
