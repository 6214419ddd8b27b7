"""Webhooks (issue 15, "Performance"): a real `allotment serve` (fsync durability), a receiver
in its own process on 127.0.0.1, and a load generator in this one.

- latency: every event crosses a usage threshold (a fresh customer on the free plan, 850 of
  its 1000 calls), sent open-loop at `--rate` events/s; for each, the time from its 201 to the
  receiver's arrival of its `entitlement.usage.threshold` delivery (p50, p99, max).
- throughput: closed-loop ingest (`--concurrency` clients) of two events per customer (850,
  then 150: each crosses a threshold), with no endpoint, then with 3 endpoints subscribed to
  every event, in one run; the ratio of the two.

    PYTHONPATH=src python -m bench.bench_webhooks --save bench/results/<date>-webhooks.json

The receiver answers 204 at once (no verification: the tests verify every delivery); times
are `time.time()` in both processes on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from tests.reliability.server import KEY, Server

C, A = "/api/v1/client", "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}


# -- the receiver (its own process) -------------------------------------------------------------


class _Receiver(asyncio.Protocol):
    arrivals: list[tuple[float, bytes]]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            _Receiver.arrivals.append((time.time(), body))
            answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
            self.transport.write(answer)  # type: ignore[attr-defined]


def _receive(port_pipe: Connection, stop_pipe: Connection) -> None:
    async def main() -> None:
        _Receiver.arrivals = []
        server = await asyncio.get_running_loop().create_server(_Receiver, "127.0.0.1", 0)
        port_pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(stop_pipe.recv)  # until the load generator is done
        out = []
        for at, body in _Receiver.arrivals:
            event = json.loads(body)
            out.append((at, event["type"], event["data"].get("referenceCustomerId")))
        port_pipe.send(out)

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        self._port_pipe, child_port = multiprocessing.Pipe()
        self._stop_pipe, child_stop = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_receive, args=(child_port, child_stop))
        self.process.start()
        self.url = f"http://127.0.0.1:{self._port_pipe.recv()}/hooks"

    def finish(self) -> list[tuple[float, str, str]]:
        self._stop_pipe.send("stop")
        arrivals: list[tuple[float, str, str]] = self._port_pipe.recv()
        self.process.join()
        return arrivals


# -- the load -------------------------------------------------------------------------------------


async def _customers(client: httpx.AsyncClient, prefix: str, count: int) -> None:
    plans = (await client.get(f"{C}/plans")).json()["data"]
    free = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "free")
    semaphore = asyncio.Semaphore(32)

    async def one(n: int) -> None:
        async with semaphore:
            ref = f"{prefix}{n}"
            body = {"externalClientCustomerId": ref, "firstName": "B", "lastName": "B",
                    "email": "b@example.com"}  # fmt: skip
            assert (await client.post(f"{C}/customers", json=body)).status_code == 201
            body = {"customerReferenceId": ref, "planId": free}
            assert (await client.post(f"{C}/subscriptions", json=body)).status_code == 201

    await asyncio.gather(*(one(n) for n in range(count)))


async def _event(client: httpx.AsyncClient, ref: str, key: str, units: int) -> float:
    body = {"eventName": "api_calls", "customerReferenceId": ref, "eventIdempotencyKey": key,
            "usageUnits": units}  # fmt: skip
    response = await client.post(f"{C}/events", json=body)
    assert response.status_code in (200, 201), response.text
    return time.time()


def _endpoint(server: Server, url: str) -> None:
    response = httpx.post(f"{server.url}{A}/webhooks", json={"url": url}, headers=HEADERS)
    assert response.status_code == 201, response.text


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _latency_run(server: Server, rate: int, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    receiver = Receiver()
    _endpoint(server, receiver.url)
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=60,
                                 limits=httpx.Limits(max_connections=64)) as client:  # fmt: skip
        await _customers(client, "lat", count)
        acked: dict[str, float] = {}

        sent: dict[str, float] = {}

        async def send(n: int) -> None:
            sent[f"lat{n}"] = time.time()
            acked[f"lat{n}"] = await _event(client, f"lat{n}", f"l{n}", 850)

        started = time.perf_counter()
        tasks = []
        for n in range(count):  # open loop: the schedule does not wait for answers
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n)))
        await asyncio.gather(*tasks)
        offered_s = time.perf_counter() - started
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # let the last deliveries land
        await asyncio.sleep(0.5)
        if len(acked) == count:
            break
    await asyncio.sleep(1.0)
    arrivals = receiver.finish()
    thresholds = [(at, ref) for at, kind, ref in arrivals
                  if kind == "entitlement.usage.threshold" and ref in acked]  # fmt: skip
    # From the 201 as the client saw it (negative: the delivery arrived before the answer got
    # back to a busy client), and from the request's send, which bounds it from above.
    from_201 = [(at - acked[ref]) * 1000 for at, ref in thresholds]
    from_send = [(at - sent[ref]) * 1000 for at, ref in thresholds]
    return {
        "rate_offered": rate, "events": count, "seconds": round(offered_s, 2),
        "deliveries": len(thresholds),
        "from_201_ms": _summary(from_201), "from_send_ms": _summary(from_send),
    }  # fmt: skip


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(_percentile(values, 50), 2), "p99": round(_percentile(values, 99), 2),
        "max": round(max(values), 2), "mean": round(statistics.fmean(values), 2),
    }  # fmt: skip


async def _throughput_run(
    server: Server, endpoints: int, customers: int, concurrency: int
) -> dict[str, Any]:
    receivers = [Receiver() for _ in range(endpoints)]
    for receiver in receivers:
        _endpoint(server, receiver.url)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.url, headers=HEADERS, timeout=60, limits=limits
    ) as client:
        prefix = f"tp{endpoints}_"
        await _customers(client, prefix, customers)
        work = [(f"{prefix}{n}", f"{prefix}a{n}", 850) for n in range(customers)]
        work += [(f"{prefix}{n}", f"{prefix}b{n}", 150) for n in range(customers)]
        queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
        for item in work:
            queue.put_nowait(item)

        async def worker() -> None:
            while not queue.empty():
                ref, key, units = queue.get_nowait()
                await _event(client, ref, key, units)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    delivered = sum(len(r.finish()) for r in receivers)
    return {
        "endpoints": endpoints, "events": len(work), "seconds": round(elapsed, 2),
        "events_per_s": round(len(work) / elapsed, 1), "deliveries_seen": delivered,
    }  # fmt: skip


def _throughput(
    server: Server, endpoints: int, args: argparse.Namespace
) -> Coroutine[Any, Any, dict[str, Any]]:
    return _throughput_run(server, endpoints, args.customers, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=2000, help="throughput: per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.bench_webhooks", *sys.argv[1:]]),
        "machine": {
            "cpus": multiprocessing.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),  # other work on the machine: noise
        },
    }
    with tempfile.TemporaryDirectory() as root:
        runs: dict[str, Callable[[Server], Coroutine[Any, Any, dict[str, Any]]]] = {
            "latency": lambda s: _latency_run(s, args.rate, args.seconds),
            "throughput_no_endpoints": lambda s: _throughput(s, 0, args),
            "throughput_3_endpoints": lambda s: _throughput(s, 3, args),
        }
        for name, run in runs.items():
            (Path(root) / name).mkdir()
            server = Server(Path(root) / name, "--allow-private-webhooks")
            try:
                results[name] = asyncio.run(run(server))
            finally:
                server.stop()
            print(name, results[name], flush=True)
    with_three = results["throughput_3_endpoints"]["events_per_s"]
    without = results["throughput_no_endpoints"]["events_per_s"]
    results["throughput_ratio"] = round(with_three / without, 3)
    print("ratio 3 endpoints / none:", results["throughput_ratio"])
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
