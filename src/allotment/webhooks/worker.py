"""The delivery worker: a server's webhook service (endpoints, message logs, dispatchers,
sender) in a process of its own, so that on a machine with a second core the sending does not
take the server's (WHK-D50). `python -m allotment.webhooks.worker <fd>`: the server starts it
(webhooks/worker_link.py) with one end of a socket pair as `<fd>`.

It lives as long as that socket: when the server exits, or is killed with SIGKILL, the kernel
closes the server's end, the read here ends, and so does the worker (WHK-D53). It ignores
SIGINT and SIGTERM, which are its server's to act on (WHK-D56). Its service is
the one a server without a worker runs in its own process, built from the same settings; the
records it is handed are durable already, so it logs them at once (WHK-D51).
"""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import logging
import os
import pickle
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec

from allotment.config import Settings
from allotment.persistence.file_modes import PRIVATE_DIRECTORY
from allotment.runtime import heap
from allotment.webhooks.from_settings import webhook_service
from allotment.webhooks.ports import WebhookRefused
from allotment.webhooks.service import WebhookService
from allotment.webhooks.worker_frames import (
    ANSWER,
    CALL,
    CLOCK,
    LOGGED,
    METHODS,
    RECORDS,
    SETTINGS,
    Clock,
    Handed,
    Logged,
    frame,
    read_frame,
)

__all__ = ("main", "serve")

logger = logging.getLogger("allotment.webhooks.worker")
_handed = msgspec.msgpack.Decoder(Handed)
_clock = msgspec.msgpack.Decoder(Clock)
_encode = msgspec.msgpack.Encoder().encode


class _ServerTime:
    """The server's manual clock as it last said (WHK-D54): retries follow its moves."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def _system_now() -> datetime:
    return datetime.now(UTC)


def _locked(directory: Path) -> int:
    """Hold `<directory>/worker.lock` while this process lives: a worker of a killed server
    may still be finishing when the restarted server's worker starts, and two processes must
    never append to one message log. Blocks until the other one has exited."""
    directory.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    fd = os.open(directory / "worker.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


class _Worker:
    def __init__(self, service: WebhookService, writer: asyncio.StreamWriter) -> None:
        self._service = service
        self._writer = writer

    def records(self, payload: bytes, tg: anyio.abc.TaskGroup) -> None:
        handed = _handed.decode(payload)
        outbox = self._service.outbox(handed.environment, handed.shard)
        for record in handed.records:  # durable already: the dispatcher logs them at once
            outbox.committed(
                record.position, record.customer_id, record.external_id, record.notices, None
            )
        last = handed.records[-1].position
        tg.start_soon(self._acknowledge, handed.environment, handed.shard, last)

    async def _acknowledge(self, environment: str, shard: int, position: int) -> None:
        await self._service.outbox(environment, shard).logged_through(position)
        self._writer.write(frame(LOGGED, _encode(Logged(environment, shard, position))))

    async def call(self, payload: bytes) -> None:
        call_id, method, args = pickle.loads(payload)  # noqa: S301 - from our own server
        try:
            if method not in METHODS:
                raise WebhookRefused(500, f"not a webhook admin method: {method!r}")
            answer = getattr(self._service, method)(*args)
            if inspect.isawaitable(answer):
                answer = await answer
            reply: tuple[object, ...] = (call_id, True, answer)
        except WebhookRefused as refused:
            reply = (call_id, False, ("refused", refused.status, refused.message, refused.field))
        except Exception as error:  # the server answers 500; the worker goes on
            logger.exception("webhook admin call %s failed", method)
            reply = (call_id, False, ("error", 500, repr(error), None))
        self._writer.write(frame(ANSWER, pickle.dumps(reply)))


async def serve(sock: socket.socket) -> None:
    """Serve the server at the other end of `sock` until it closes it."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    kind, payload = await read_frame(reader)
    assert kind == SETTINGS, kind
    settings, manual_now = pickle.loads(payload)  # noqa: S301 - from our own server
    assert isinstance(settings, Settings)
    await anyio.to_thread.run_sync(_locked, settings.data_dir / "webhooks")
    service = webhook_service(settings)
    # The message logs just read are long-lived (kept for the retention): out of the cycle
    # collector's walks, as the server keeps its customers' state (runtime/heap.py).
    heap.settle()
    time = _ServerTime(manual_now) if manual_now is not None else None
    service.now = time.now if time is not None else _system_now
    worker = _Worker(service, writer)
    async with service.running(), anyio.create_task_group() as tg:
        try:
            while True:
                kind, payload = await read_frame(reader)
                if kind == RECORDS:
                    worker.records(payload, tg)
                elif kind == CALL:
                    tg.start_soon(worker.call, payload)
                elif kind == CLOCK:
                    if time is not None:
                        time.at = _clock.decode(payload).now
                    service.wake()
        except asyncio.IncompleteReadError:  # the server is gone: so is its worker
            tg.cancel_scope.cancel()


def main(argv: list[str]) -> None:
    # Ctrl-C in a terminal, and a service manager's stop (SIGTERM to the process group or the
    # cgroup), reach the worker with its server. Dying of them, it was started again by a
    # server that was shutting down (WHK-D52). The server ends it by closing the socket, and
    # kills it if it outstays that (worker_link.EXIT_BOUND_S): WHK-D56.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s webhook worker %(message)s")
    sock = socket.socket(fileno=int(argv[0]))
    anyio.run(serve, sock, backend_options=_loop_options())


def _loop_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401, PLC0415 - the server's loop when installed
    except ImportError:
        return {}
    return {"use_uvloop": True}


if __name__ == "__main__":
    main(sys.argv[1:])
