"""The server's side of its delivery worker (webhooks/worker.py, WHK-D50..WHK-D56): the
process, the socket to it, the admin calls over it, and the outboxes the shards hand their
journal records to.

On the server's thread a record costs what the turn already paid (`committed`: an isinstance
per fact) plus, per group commit, one msgpack encode and one write to the socket. Rendering,
the message log, signing and sending are the worker's, on another core.

The worker starts when it is first needed: a record with a notification, an admin call, or a
data directory whose webhooks were used before (their pending messages must go on). A worker
that exits is started again, and every record it was handed and had not yet reported logged
is handed to the new one first, in order (the dispatcher drops what its log already has, by
event id), so nothing is lost and nothing is sent twice but at-least-once allows (WHK-D52).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

import allotment
from allotment.config import Settings
from allotment.webhooks.from_settings import shard_logs
from allotment.webhooks.ports import WebhookRefused
from allotment.webhooks.worker_frames import (
    ANSWER,
    CALL,
    LOGGED,
    SETTINGS,
    Logged,
    frame,
    read_frame,
)

__all__ = ("WorkerLink",)

logger = logging.getLogger("allotment.webhooks")
RESTART_FIRST_S = 0.1  # a worker that exits is started again after this, doubling ...
RESTART_MAX_S = 5.0  # ... up to this while it keeps exiting within STEADY_S of its start
STEADY_S = 30.0
CALL_BOUND_S = 60.0  # an admin call waits this long for a worker (a bound, not a target)
EXIT_BOUND_S = 10.0  # at shutdown, the worker's time to finish before it is killed
_logged = msgspec.msgpack.Decoder(Logged)


class WorkerLink:
    """The worker process of `settings`' server, started when first needed and again after it
    exits; `acked` is told each `Logged` report, `reconnected` each new worker."""

    def __init__(
        self,
        settings: Settings,
        acked: Callable[[Logged], None],
        reconnected: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._acked = acked
        self._reconnected = reconnected
        # The server's clock; its time goes to the worker with `--clock manual` only.
        self.now: Callable[[], datetime] | None = None
        self.running = False
        self.generation = 0  # one per worker started
        self._writer: asyncio.StreamWriter | None = None
        self._changed = asyncio.Event()  # replaced after each change of `_writer`
        self._needed = asyncio.Event()
        self._calls: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._ids = itertools.count(1)

    def used_before(self) -> bool:
        """Whether this data directory's webhooks were used (a worker ran, or an older server
        logged messages): then a worker starts with the server, for their pending messages."""
        places = [self._settings.data_dir / "webhooks", *shard_logs(self._settings, True)]
        return any(place is not None and place.exists() for place in places)

    def need(self) -> None:
        self._needed.set()

    @asynccontextmanager
    async def serving(self, tg: TaskGroup) -> AsyncIterator[None]:
        """Supervise the worker in `tg` while held; at the end it is told to go and awaited."""
        self.running = True
        if self.used_before():
            self.need()
        tg.start_soon(self._supervise)
        try:
            yield
        finally:
            self.running = False

    def write(self, kind: bytes, payload: bytes) -> None:
        """Send a frame to the worker, if one is connected (else it is dropped: see callers)."""
        if self._writer is not None:
            self._writer.write(frame(kind, payload))

    async def connection(self) -> tuple[asyncio.StreamWriter, int]:
        """The worker's socket and its generation, once one is connected."""
        self.need()
        while self._writer is None:
            await self._changed.wait()
        return self._writer, self.generation

    async def call(self, method: str, args: tuple[object, ...]) -> Any:
        """`WebhookService.<method>(*args)` in the worker (a `remote.HostCall`).

        Raises:
            WebhookRefused: the service's refusal; 503 when no worker answered in time.
        """
        if method == "statistics" and self._writer is None:  # never start one for a look
            raise WebhookRefused(503, "No webhook worker is running.")
        try:
            with anyio.fail_after(CALL_BOUND_S):
                return await self._ask(method, args)
        except TimeoutError:
            raise WebhookRefused(503, "The webhook worker did not answer; try again.") from None

    async def statistics_now(self, bound_s: float) -> Any | None:
        """The worker's `statistics()` as its dispatchers hold them now (/health, WHK-D28a):
        `[]` when no worker was ever needed (no endpoint exists then, WHK-D50, and none is
        started for a look); None when no worker answered within `bound_s`: one that is
        starting, restarting, stopped or slow leaves the backlog unknown, never guessed."""
        if not self._needed.is_set():
            return []
        with anyio.move_on_after(bound_s):
            try:
                return await self._ask("statistics", ())
            except (WebhookRefused, RuntimeError):  # the worker restarted, or failed it
                return None
        return None

    async def _ask(self, method: str, args: tuple[object, ...]) -> Any:
        """`method` in the worker once one is connected; the caller bounds the wait.

        Raises:
            WebhookRefused: the service's refusal, or 503 when the worker restarted meanwhile.
            RuntimeError: the service failed (the worker logged why).
        """
        call_id = next(self._ids)
        try:
            writer, _ = await self.connection()
            answer = self._calls[call_id] = asyncio.get_running_loop().create_future()
            writer.write(frame(CALL, pickle.dumps((call_id, method, args))))
            ok, value = await answer
        finally:
            self._calls.pop(call_id, None)  # answered, or given up on (a late answer is dropped)
        if ok:
            return value
        kind, status, message, field = value
        if kind == "refused":
            raise WebhookRefused(status, message, field)
        raise RuntimeError(f"the webhook worker failed: {message}")

    # -- the process --------------------------------------------------------------------------

    async def _supervise(self) -> None:
        await self._needed.wait()
        delay = RESTART_FIRST_S
        while True:
            started = time.monotonic()
            try:
                code: object = await self._serve_one()
            except OSError as error:  # no process (out of memory, descriptors): try again
                code = error
            logger.error("the webhook worker exited (%s); starting another", code)
            if time.monotonic() - started > STEADY_S:
                delay = RESTART_FIRST_S
            await anyio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], socket.socket]:
        ours, theirs = socket.socketpair()
        # The worker imports this same allotment, wherever the server found it.
        path = [str(Path(allotment.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "allotment.webhooks.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)},
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the worker's now: its end closes when the worker exits
        return process, ours

    async def _serve_one(self) -> int | None:
        """Start a worker and serve it until it exits; its exit code."""
        process, sock = self._spawn()
        writer: asyncio.StreamWriter | None = None
        try:
            try:
                reader, writer = await asyncio.open_unix_connection(sock=sock)
            except BaseException:
                sock.close()  # no stream owns it yet
                raise
            now = self.now() if self.now is not None and self._settings.clock == "manual" else None
            writer.write(frame(SETTINGS, pickle.dumps((self._settings, now))))
            self._connected(writer)
            with suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    kind, payload = await read_frame(reader)
                    if kind == ANSWER:
                        self._answered(payload)
                    elif kind == LOGGED:
                        self._acked(_logged.decode(payload))
        finally:
            self._disconnected(writer)
            with anyio.CancelScope(shield=True):
                await self._ended(process)
        return process.returncode

    def _connected(self, writer: asyncio.StreamWriter) -> None:
        self.generation += 1
        self._writer = writer
        self._changed.set()
        self._changed = asyncio.Event()
        self._reconnected()

    def _answered(self, payload: bytes) -> None:
        call_id, ok, value = pickle.loads(payload)  # noqa: S301 - from our own worker
        answer = self._calls.pop(call_id, None)
        if answer is not None and not answer.done():
            answer.set_result((ok, value))

    def _disconnected(self, writer: asyncio.StreamWriter | None) -> None:
        self._writer = None
        if writer is not None:
            writer.close()  # the worker reads the end of its socket, and exits
        calls, self._calls = self._calls, {}
        gone = ("refused", 503, "The webhook worker restarted; try again.", None)
        for answer in calls.values():
            if not answer.done():
                answer.set_result((False, gone))

    @staticmethod
    async def _ended(process: subprocess.Popen[bytes]) -> None:
        with anyio.move_on_after(EXIT_BOUND_S):
            await anyio.to_thread.run_sync(process.wait)
        if process.poll() is None:
            process.kill()
            await anyio.to_thread.run_sync(process.wait)
