"""Instructions per HTTP write request, counted by callgrind (as `bench.bench_instructions`
does for the shard): the served app (`BodyDeadline` around the fast path and its middleware,
the file journal with fsync) driven in-process with ASGI messages, without granian or a
socket, so the figure is the app's own CPU per request and does not move with the load.

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m bench.http.instructions \
        [--ops 300] [--customers 100] [--operations ingest pair pair_hot check litestar_post]

`ingest` is `POST /events` (the bench's event: unique key, rotating customers); `pair` a
`POST /reservations` and its `POST /reservations/{id}/commit` (compare with one ingest, issue
14); `pair_hot` the same on one customer; `check` the fast path's GET; `litestar_post` the
trivial Litestar POST of `bench.http.ceilings` (what the framework costs, issue 21).
`--concurrency N` runs N clients at once, as wrk's connections, so that their commits share
fsyncs as a loaded server's do (the default, 1, gives every write an fsync of its own).

Inner mode (what callgrind runs): `--inner OP N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import uvloop

from allotment.config import Settings
from allotment.http.body_deadline import BodyDeadline
from allotment.wiring import build_app
from bench.bench_engine import _populate

OPERATIONS = ("ingest", "pair", "pair_hot", "check", "litestar_post")
KEY = "sk_test_" + "instructions" * 3
_USAGE = (
    b'"usageUnits":1,"costInput":{"model":"gpt-4o","modelProvider":"openai",'
    b'"inputTokens":1200,"outputTokens":630}'
)
App = Any  # an ASGI app: Litestar and BodyDeadline type their messages apart


def _scope(method: str, path: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {KEY}".encode()),
               (b"content-type", b"application/json"), *extra]  # fmt: skip
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip


async def _request(app: App, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    answer: dict[str, Any] = {}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] = message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


async def _one(app: App, operation: str, i: int, customers: int) -> None:
    ref = f"c{0 if operation == 'pair_hot' else i % customers}"
    if operation in ("ingest", "litestar_post"):
        body = b'{"eventName":"ai_chat","featureKey":"ai_chat","customerReferenceId":"%s",%s}'
        extra = [(b"x-idempotency-key", f"k-{i}".encode())]
        status, _ = await _request(app, _scope("POST", "/api/v1/client/events", extra),
                                   body % (ref.encode(), _USAGE))  # fmt: skip
        assert status in (200, 201), status
    elif operation == "check":
        status, _ = await _request(
            app, _scope("GET", f"/api/v1/client/entitlements/{ref}/ai_chat"), b""
        )
        assert status == 200, status
    else:
        reserve = (b'{"customerReferenceId":"%s","featureKey":"ai_chat","units":1,'
                   b'"ttlSeconds":300,"reservationId":"r-%d"}') % (ref.encode(), i)  # fmt: skip
        path = "/api/v1/client/reservations"
        status, _ = await _request(app, _scope("POST", path), reserve)
        assert status == 201, status
        status, answer = await _request(
            app, _scope("POST", f"{path}/r-{i}/commit"), b"{%s}" % _USAGE
        )
        assert status == 200, (status, answer)
        assert b"recordedUnits" in answer, answer


async def _lifespan(app: App) -> Callable[[], Awaitable[None]]:
    """Starts the app's lifespan; returns what ends it."""
    to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    task = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    started = await from_app.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def stop() -> None:
        await to_app.put({"type": "lifespan.shutdown"})
        await from_app.get()
        await task

    return stop


async def _inner(
    operation: str, ops: int, customers: int, data_dir: Path, concurrency: int
) -> None:
    if operation == "litestar_post":
        from bench.http.ceilings import BODIES_ENV, litestar_app  # noqa: PLC0415

        bodies = data_dir.parent / "bodies.json"
        bodies.write_text(json.dumps({"check": "{}", "event": '{"success":true}', "customers": 1}))
        os.environ[BODIES_ENV] = str(bodies)
        app: App = litestar_app()
    else:
        settings = Settings(data_dir=data_dir, api_keys=[KEY], durability="fsync")
        fast = build_app(settings)
        app = BodyDeadline(fast, settings.body_read_timeout_s)
    stop = await _lifespan(app)
    if operation != "litestar_post":
        await _populate(fast._system.shard("test"), customers)
    if concurrency == 1:
        for i in range(ops):
            await _one(app, operation, i, customers)
    else:  # clients at once, as wrk's connections: their commits share fsyncs

        async def client(first: int) -> None:
            for i in range(first, ops, concurrency):
                await _one(app, operation, i, customers)

        await asyncio.gather(*(client(c) for c in range(concurrency)))
    await stop()


def _instructions(operation: str, ops: int, customers: int, concurrency: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.http.instructions",
            "--inner", operation, str(ops), "--customers", str(customers), "--dir", scratch,
            "--concurrency", str(concurrency),
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONHASHSEED": "0"}  # see bench.bench_instructions
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
        match = re.search(r"Collected : (\d+)", done.stderr)
        assert done.returncode == 0, done.stderr[-3000:]
        assert match is not None, done.stderr[-3000:]
        return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--operations", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--concurrency", type=int, default=1, help="clients at once")
    parser.add_argument("--inner", nargs=2, metavar=("OP", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        operation, ops = args.inner[0], int(args.inner[1])
        data_dir = args.dir / "data"
        uvloop.run(_inner(operation, ops, args.customers, data_dir, args.concurrency))  # granian's
        return
    figures = {}
    for operation in args.operations:
        low = _instructions(operation, args.ops, args.customers, args.concurrency)
        high = _instructions(operation, 3 * args.ops, args.customers, args.concurrency)
        figures[operation] = round((high - low) / (2 * args.ops))
        print(f"{operation}: {figures[operation]:,} instructions per op", flush=True)
    print(
        json.dumps(
            {
                "ops": args.ops,
                "customers": args.customers,
                "concurrency": args.concurrency,
                "per_op": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
