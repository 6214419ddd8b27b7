"""A real `allotment serve` subprocess for reliability tests, killed with SIGKILL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

KEY = "sk_test_" + "crash" * 8


# Under pytest-xdist each worker takes only the ports of its own residue class: a port is free
# when asked but bound by the server a second or two later, and in that window the kernel may
# hand the same port to another worker's free_port. Halved first: Linux gives bind(0) odd
# ports by preference (connect() takes the even ones), so port % 2 would starve worker 0.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def free_port() -> int:
    """A loopback port that is free now, and that no other xdist worker of this run picks."""
    while True:  # each try has a 1 in _WORKERS chance: a handful of binds
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if (port // 2) % _WORKERS == _WORKER:
            return port


class Server:
    """`python -m allotment serve` in its own process group, so SIGKILL takes every worker."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        shards: int = 1,
        webhook_worker: bool | None = False,
    ) -> None:
        """`webhook_worker`: False pins delivery in the server's process (`--no-webhook-worker`),
        where most tests look at it: a worker is a second interpreter per server, a minute of
        CPU over a run. The worker's tests pass `--webhook-worker` in `extra`, which wins; None
        leaves `serve`'s default (the benches measure what ships)."""
        self.data_dir = data_dir
        self.shards = shards
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"server-{self.port}.log"
        # Over shards, in the server's process (tests/reliability/in_process_shards.py).
        module = ["allotment"] if shards == 1 else ["tests.reliability.in_process_shards"]
        pinned = (
            []
            if webhook_worker is None
            else ["--webhook-worker" if webhook_worker else "--no-webhook-worker"]
        )
        command = [sys.executable, "-m", *module, "serve", "--data-dir", str(data_dir),
                   "--port", str(self.port), "--api-key", KEY, *pinned, *extra]  # fmt: skip
        if shards > 1:
            command += ["--shards", str(shards)]
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 120.0) -> None:  # a bound, not an expectation
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):  # not listening yet: poll again
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hook, no flush."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log_file.close()
        self._wait_unlocked()

    def _wait_unlocked(self, timeout_s: float = 60.0) -> None:
        """Until the data directory's lock is free: `wait` reaps the serve process, but its
        granian worker shares the lock and may take a moment longer to die."""
        lock = self.data_dir / "allotment.lock"
        deadline = time.monotonic() + timeout_s
        while lock.exists() and time.monotonic() < deadline:
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(0.05)
            finally:
                os.close(fd)

    def stop(self, timeout_s: float = 60.0) -> None:  # returns as soon as it has exited
        """SIGTERM, a clean shutdown up to `timeout_s`, then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log_file.close()
