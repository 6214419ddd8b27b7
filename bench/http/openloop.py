"""Open-loop latency: requests sent on a fixed timetable, whatever the server's pace.

Request k is due at `t0 + k / rate`. A timer thread wakes at each due time and hands the due
requests to the event loop, which sends each on an idle keep-alive connection or queues it
until one frees up. Latency is measured from the *scheduled* send time to the last byte of the
answer, so a server that stalls pays for every request that waited behind the stall (no
coordinated omission). The first `warmup_s` seconds are sent but not counted.

The generator's own delay is reported as `timer_lag_ms` (when the event loop got a request,
minus when it was due); running it against the raw ASGI ceiling at the same rate shows the
floor of the whole measurement.

Other benches drive it programmatically with `run_timetable`, which takes any request bytes
per index (bench/bench_webhooks.py: one customer and idempotency key per event) and returns
the per-request timings.

    .venv/bin/python -m bench.http.openloop --port 18080 --kind check --rate 5000 \
        --duration 10 --key sk_test_... --customers 100000

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import sys
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import uvloop  # as granian uses it: a dependency of allotment

__all__ = ("OpenLoopResult", "Timetable", "main", "run_timetable")

_CONNECT_TIMEOUT_S = 10.0
_GRACE_S = 5.0  # how long answers may trail the last scheduled request
_SLEEP_OVERSHOOT_S = 60e-6  # Linux wakes a sleeper about this late (timer slack)


class Percentiles(msgspec.Struct, kw_only=True):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


class OpenLoopResult(msgspec.Struct, kw_only=True):
    kind: str
    rate: float  # offered, requests per second
    duration_s: float  # measured window, after the warm-up
    warmup_s: float
    connections: int
    scheduled: int  # requests due in the measured window
    completed: int
    incomplete: int  # never answered within the grace period: counted as failures
    achieved_rate: float
    statuses: dict[str, int]
    latency_ms: Percentiles
    timer_lag_ms: Percentiles  # when the loop got each request, minus when it was due
    cdf_ms: list[tuple[float, float]]  # (quantile, latency ms)


def _request_factory(args: argparse.Namespace) -> Callable[[int], bytes]:
    host = f"Host: 127.0.0.1:{args.port}\r\nAuthorization: Bearer {args.key}\r\n"
    customers = args.customers
    if args.kind == "check":
        feature = args.feature

        def check(k: int) -> bytes:
            path = f"/api/v1/client/entitlements/c{k % customers}/{feature}"
            return f"GET {path} HTTP/1.1\r\n{host}\r\n".encode()

        return check
    nonce = args.nonce

    def event(k: int) -> bytes:
        body = (
            '{"eventName":"chat_completion","featureKey":"ai_chat","customerReferenceId":'
            f'"c{k % customers}","usageUnits":1830,"costInput":{{"model":"gpt-4o",'
            '"modelProvider":"openai","inputTokens":1200,"outputTokens":630}}'
        )
        return (
            f"POST /api/v1/client/events HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
            f"X-Idempotency-Key: {nonce}-{k}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    return event


def _content_length(head: bytes) -> int:
    """The Content-Length of a lower-cased response head (granian always sends one)."""
    at = head.find(b"content-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at)
    return int(head[at + 15 : end if end >= 0 else len(head)])


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, generator: _Generator) -> None:
        self._generator = generator
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.index = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end]).lower()
            total = end + 4 + _content_length(head)
            if len(self._buffer) < total:
                return
            status = int(head[9:12])
            del self._buffer[:total]
            self._generator.completed(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._generator.lost(self)


class _Generator:
    def __init__(self, make: Callable[[int], bytes], total: int, rate: float) -> None:
        self._make = make
        self.rate = rate
        self.t0 = 0.0
        self.latency_s = array("d", [math.nan]) * total
        self.timer_lag_s = array("d", [math.nan]) * total
        self.send_lag_s = array("d", [math.nan]) * total
        self.statuses: Counter[int] = Counter()
        self._idle: list[_Connection] = []
        self._pending: deque[int] = deque()
        self._total = total
        self._done = 0
        self.finished = asyncio.Event()
        self.connections: list[_Connection] = []

    def add(self, connection: _Connection) -> None:
        self._idle.append(connection)
        self.connections.append(connection)

    def fire(self, start: int, stop: int) -> None:
        """Requests start .. stop-1 are due: send each on an idle connection, or queue it."""
        now = time.perf_counter()
        t0, rate, lags = self.t0, self.rate, self.timer_lag_s
        for k in range(start, stop):
            lags[k] = now - (t0 + k / rate)
            if self._idle:
                self._send(self._idle.pop(), k)
            else:
                self._pending.append(k)

    def _send(self, connection: _Connection, k: int) -> None:
        assert connection.transport is not None
        connection.index = k
        connection.transport.write(self._make(k))
        self.send_lag_s[k] = time.perf_counter() - (self.t0 + k / self.rate)

    def completed(self, connection: _Connection, status: int) -> None:
        k = connection.index
        self.latency_s[k] = time.perf_counter() - (self.t0 + k / self.rate)
        self.statuses[status] += 1
        self._done += 1
        if self._pending:
            self._send(connection, self._pending.popleft())
        else:
            self._idle.append(connection)
        if self._done == self._total:
            self.finished.set()

    def lost(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)


def _tick(
    loop: asyncio.AbstractEventLoop, generator: _Generator, total: int, stop: threading.Event
) -> None:
    """Hand each request to the loop when it falls due (this thread only keeps time)."""
    sent = 0
    t0, rate = generator.t0, generator.rate
    while sent < total and not stop.is_set():
        due = min(total, int((time.perf_counter() - t0) * rate) + 1)
        if due > sent:
            loop.call_soon_threadsafe(generator.fire, sent, due)
            sent = due
        wait = t0 + sent / rate - time.perf_counter()
        if wait > _SLEEP_OVERSHOOT_S:
            time.sleep(wait - _SLEEP_OVERSHOOT_S)
        elif wait > 0:
            time.sleep(0)  # let the loop thread run; the next pass hands over what is due


def _percentiles(values: list[float]) -> Percentiles:
    if not values:
        return Percentiles(p50=math.nan, p90=math.nan, p99=math.nan, p999=math.nan,
                           max=math.nan, mean=math.nan)  # fmt: skip

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1e3, 3)

    return Percentiles(
        p50=at(0.5), p90=at(0.9), p99=at(0.99), p999=at(0.999),
        max=round(values[-1] * 1e3, 3), mean=round(sum(values) / len(values) * 1e3, 3),
    )  # fmt: skip


def _cdf(values: list[float]) -> list[tuple[float, float]]:
    quantiles = [i / 100 for i in range(100)] + [0.99 + i / 1000 for i in range(10)]
    quantiles += [0.999 + i / 10000 for i in range(10)] + [1.0]
    if not values:
        return []
    return [(q, round(values[min(len(values) - 1, int(q * len(values)))] * 1e3, 4))
            for q in quantiles]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Timetable:
    """One run, request by request: request k was due at `t0 + k / rate` (`time.perf_counter()`).

    Each array holds a time in seconds after the request's due time, or NaN where the event
    never happened (a request never answered within the timeout).
    """

    t0: float
    rate: float
    latency_s: array[float]  # the answer's last byte
    timer_lag_s: array[float]  # the event loop got the request from the timer thread
    send_lag_s: array[float]  # written to a connection (later than the timer's when all were busy)
    statuses: Counter[int]


async def run_timetable(
    make: Callable[[int], bytes],
    *,
    port: int,
    rate: float,
    total: int,
    connections: int,
    timeout_s: float,
) -> Timetable:
    """Send requests 0 .. total-1 to 127.0.0.1:`port`, request k due at `t0 + k / rate`.

    Runs on the current event loop (uvloop in `main`). A `rate` far above what the server
    answers makes every request due at once: a closed loop of `connections` clients, each
    taking the next request as its answer arrives.

    Args:
        make: The bytes of request k (a whole HTTP/1.1 request; the answer must carry a
            Content-Length).
        port: The server's port on 127.0.0.1.
        rate: Requests per second of the timetable.
        total: How many requests.
        connections: Keep-alive connections, opened before t0.
        timeout_s: How long to wait for the last answer; the unanswered stay NaN.

    Returns:
        The timings of every request; the connections are closed.

    Raises:
        RuntimeError: the generator failed (an exception in a callback).
    """
    generator = _Generator(make, total, rate)
    loop = asyncio.get_running_loop()
    failures: list[str] = []

    def failed(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        failures.append(str(context.get("exception") or context.get("message")))
        generator.finished.set()  # a broken generator measures nothing: stop at once

    previous = loop.get_exception_handler()
    loop.set_exception_handler(failed)
    try:
        for _ in range(connections):
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(generator), "127.0.0.1", port),
                _CONNECT_TIMEOUT_S,
            )
            generator.add(connection)
        stop = threading.Event()
        generator.t0 = time.perf_counter() + 0.05
        ticker = threading.Thread(target=_tick, args=(loop, generator, total, stop), daemon=True)
        ticker.start()
        with contextlib.suppress(TimeoutError):  # the unanswered stay NaN
            await asyncio.wait_for(generator.finished.wait(), timeout_s)
        stop.set()
        ticker.join()
    finally:
        for each in generator.connections:
            if each.transport is not None:
                each.transport.close()
        loop.set_exception_handler(previous)
    if failures:
        raise RuntimeError(f"the generator failed: {failures[0]}")
    return Timetable(
        t0=generator.t0, rate=rate, latency_s=generator.latency_s,
        timer_lag_s=generator.timer_lag_s, send_lag_s=generator.send_lag_s,
        statuses=generator.statuses,
    )  # fmt: skip


async def _run(args: argparse.Namespace) -> OpenLoopResult:
    rate = float(args.rate)
    skip = int(args.warmup * rate)
    total = skip + int(args.duration * rate)
    timetable = await run_timetable(
        _request_factory(args), port=args.port, rate=rate, total=total,
        connections=args.connections, timeout_s=args.warmup + args.duration + _GRACE_S,
    )  # fmt: skip
    counted = [v for v in timetable.latency_s[skip:] if not math.isnan(v)]
    counted.sort()
    lags = sorted(v for v in timetable.timer_lag_s[skip:] if not math.isnan(v))
    return OpenLoopResult(
        kind=args.kind, rate=rate, duration_s=args.duration, warmup_s=args.warmup,
        connections=args.connections, scheduled=total - skip, completed=len(counted),
        incomplete=total - skip - len(counted),
        achieved_rate=round(len(counted) / args.duration, 1),
        statuses={str(k): v for k, v in sorted(timetable.statuses.items())},
        latency_ms=_percentiles(counted), timer_lag_ms=_percentiles(lags), cdf_ms=_cdf(counted),
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=("check", "event"), default="check")
    parser.add_argument("--rate", type=float, required=True, help="offered requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent, not counted")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--feature", default="api_calls")
    parser.add_argument("--key", default="sk_test_none")
    parser.add_argument("--nonce", default="ol", help="idempotency key prefix (events)")
    return parser


def main() -> None:
    args = _parser().parse_args()
    sys.setswitchinterval(1e-4)  # the timer thread gets the GIL within 0.1 ms, not 5 ms
    gc.disable()  # no cycles are made here; a collection would only add pauses
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_run(args))
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
