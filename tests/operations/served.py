"""A real `allotment serve` process that tests wait on through its own output: the
"listening" line (OPS-P4) is the signal that requests will be served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.waiting import wait_until

LISTENING = "allotment: listening at "


class Served:
    """`command` (default `python -m allotment serve ARGS`) in its own process group, its
    output in `log`. Construction returns once the server said it listens."""

    def __init__(
        self,
        log: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        command: Sequence[str] | None = None,
        installed: bool = False,
    ) -> None:
        """`installed`: the command is an installed `allotment`, which must find itself and
        its data without the test run's PYTHONPATH (that points at the source tree)."""
        self.log = log
        dropped = ("ALLOTMENT_", "PYTHONPATH") if installed else ("ALLOTMENT_",)
        base = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        argv = list(command or [sys.executable, "-m", "allotment", "serve"]) + list(args)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**base, **(env or {})}, cwd=cwd,
            )  # fmt: skip
        self.url = self._wait_listening()

    def output(self) -> str:
        return self.log.read_text()

    def _wait_listening(self) -> str:
        def listening_at() -> str | None:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            lines = self.output().splitlines()
            found = [line for line in lines if line.startswith(LISTENING)]
            return found[0].removeprefix(LISTENING).split()[0] if found else None

        try:
            return wait_until(listening_at, "the listening line")
        except AssertionError:
            self.stop()
            raise

    def sandbox_key(self) -> str:
        """The key the first start printed."""
        for line in self.output().splitlines():
            if line.strip().startswith("sandbox key "):
                return line.split()[-1]
        raise AssertionError(f"no sandbox key in: {self.output()}")

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown, no flush, no checkpoint."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and a clean shutdown (SIGKILL past `timeout_s`); the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode
