"""Starting and stopping the servers under test, each in its own process group on 127.0.0.1.

Every server is started with `start_new_session`, so stopping it signals its whole group
(granian's main process and its worker) by the id of the process we started, and nothing else.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ("HOST", "ROOT", "Server", "free_port", "request", "running")

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]  # the repository: `bench` must be importable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request; returns the status, the headers (lower-case names) and the body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class Server:
    """A server process; `command` is what was run, for the results file."""

    def __init__(self, name: str, command: Sequence[str], port: int, log: Path) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str, timeout_s: float, headers: dict[str, str]) -> None:
        """Start the process and wait until `GET ready_path` answers 200."""
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self._log_tail()}")
            try:
                if request(self.port, "GET", ready_path, headers=headers)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        """The end of the server's output (its log lives in a directory removed on exit)."""
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the group we created, by its id
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def running(
    servers: Sequence[tuple[Server, str, float, dict[str, str]]],
) -> Iterator[None]:
    """Start each (server, ready path, timeout, headers) in turn; stop them all on exit."""
    try:
        for server, path, timeout_s, headers in servers:
            server.start(path, timeout_s, headers)
        yield
    finally:
        for server, *_ in servers:
            server.stop()
