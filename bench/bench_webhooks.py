"""Webhooks (issue 15, "Performance"): a real `allotment serve` (fsync durability), receivers
in their own processes on 127.0.0.1, and a load generator in this one.

- latency: every event crosses a usage threshold (a fresh customer on the free plan, 850 of
  its 1000 calls), sent open-loop at `--rate` events/s for `--seconds`: request k is due at
  `t0 + k / rate` whatever the server's pace (bench/http/openloop.py's `run_timetable`: raw
  keep-alive HTTP/1.1 on uvloop, pre-encoded requests, no coordinated omission). For each
  event, matched by `referenceCustomerId`, the time from its 201 to the receiver's arrival of
  its `entitlement.usage.threshold` delivery, and from its scheduled send (p50, p99, max, mean).
  The offered rate achieved (events per second of the schedule, as written to the sockets)
  and the generator's lag show whether the generator kept up.
- throughput: closed-loop ingest (`--concurrency` connections of the same raw client, each
  sending its next event when its answer arrives) of two events per customer (850, then 150:
  each crosses a threshold; the 150 is answered 200, "limit reached", and still recorded),
  with no endpoint, then on a fresh server with 3 endpoints subscribed to every event (3
  deliveries per event), in one run; the ratio of the two. Every delivery must arrive: the run
  waits for them (a generous bound, not an expectation), reports how many came and how long
  they trailed the last answer, and exits non-zero if any is missing. The ratio is also given
  until the last delivery arrived (`throughput_ratio_until_delivered`): deliveries that trail
  the run are work the answers' rate does not count.
  `--events-per-customer N` (N > 2 dividing 1000) spreads each customer's 1000 calls over N
  equal events instead: every customer still crosses both thresholds, but only 2 of its N
  events do (2 x 3 / N deliveries per event), the rest are plain ingest. N = 2 (the default)
  is the densest case, every event a crossing.

- slow endpoint (`--slow-endpoint`, alone): checks and events open-loop at `--rate` for
  `--seconds` (4 checks to each event; every event crosses a threshold), with one endpoint
  whose receiver answers each delivery 5 s after it arrived, with one that answers at once,
  and with none, in turn 3 times on fresh servers: the checks' latency from the scheduled
  send (issue 15: "a slow endpoint (5 s per request) does not move the check p99"), and the
  ratios of the medians of their p99s, slow to prompt (the clause) and slow to none.

Customers are set up before each measurement (with the same client, closed-loop, not timed),
and the endpoints are registered after that, so the deliveries in flight during a
measurement are those of the measured events. The generator's and the receivers' CPU times
are reported: on a 2-core machine they compete with the server. The machine's speed of the day
is `timeit_sum_range_1000_us` (`python -m timeit "sum(range(1000))"`).

    PYTHONPATH=src:. python -m bench.bench_webhooks --save bench/results/<date>-webhooks.json

The receivers answer 204 at once (no verification: the tests verify every delivery); times
are `time.time()` in every process of the same machine (the generator's perf_counter times are
converted by one offset taken before each run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvloop
from tests.reliability.server import KEY, Server

from bench.http.openloop import Timetable, run_timetable

C, A = "/api/v1/client", "/api/v1/admin"
THRESHOLD = "entitlement.usage.threshold"
_ALL_AT_ONCE = 1e9  # requests/s of a timetable that is a closed loop: every request due at t0
_DELIVERY_BOUND_S = 120.0  # how long deliveries may trail the last answer: a bound, not a target
_ANSWER_BOUND_S = 120.0  # how long answers may trail the last scheduled request, plus ...
_ANSWER_RATE_MIN = 50.0  # ... the time to answer them all at this pace (closed loops)
# --slow-endpoint's variants: the endpoint's answer time (issue 15: "5 s per request")
_SLOW_VARIANTS: dict[str, float | None] = {
    "no_endpoint": None, "prompt_endpoint": 0.0, "slow_endpoint": 5.0,
}  # fmt: skip


# -- the receiver (its own process) -------------------------------------------------------------


_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
_THRESHOLD = THRESHOLD.encode()


class _Receiver(asyncio.Protocol):
    """A minimal HTTP/1.1 endpoint. It shares the machine's 2 cores with the server it
    measures, so it does as little as it can per request: its CPU is a cost of the bench, not
    of a delivery (a real endpoint runs elsewhere). It is reported (`receivers_cpu_s`)."""

    arrivals: list[tuple[float, bytes]]
    thresholds = 0
    delay_s = 0.0  # a slow endpoint answers each request this long after it arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            found = _LENGTH.search(buffer, 0, head_end + 2)
            end = head_end + 4 + (int(found[1]) if found else 0)
            if len(buffer) < end:
                break
            body = buffer[head_end + 4 : end]
            buffer = buffer[end:]
            _Receiver.arrivals.append((time.time(), body))
            if _THRESHOLD in body:  # counted as they come, for the waiting side
                _Receiver.thresholds += 1
            if self.delay_s:  # the same delay for every request keeps the answers in order
                write = self.transport.write  # type: ignore[attr-defined]
                asyncio.get_running_loop().call_later(self.delay_s, write, _NO_CONTENT)
            else:
                self.transport.write(_NO_CONTENT)  # type: ignore[attr-defined]
        self.buffer = buffer


def _receive(pipe: Connection, delay_s: float) -> None:
    """Serve until told "stop", answering "count" with the thresholds received so far."""

    async def main() -> None:
        _Receiver.arrivals, _Receiver.delay_s = [], delay_s
        server = await asyncio.get_running_loop().create_server(_Receiver, "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        while await asyncio.to_thread(pipe.recv) == "count":
            pipe.send(_Receiver.thresholds)
        cpu_s = time.process_time()  # receiving only, not the decoding below
        out = []
        for at, body in _Receiver.arrivals:
            event = json.loads(body)
            out.append((at, event["type"], event["data"].get("referenceCustomerId")))
        pipe.send((cpu_s, out))

    uvloop.run(main())


class Receiver:
    def __init__(self, delay_s: float = 0.0) -> None:
        self._pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_receive, args=(child, delay_s))
        self.process.start()
        self.cpu_s = 0.0  # the process's CPU time, known after `finish`
        self.url = f"http://127.0.0.1:{self._pipe.recv()}/hooks"

    def thresholds(self) -> int:
        self._pipe.send("count")
        count: int = self._pipe.recv()
        return count

    def finish(self) -> list[tuple[float, str, str]]:
        """Stop; every arrival as (time.time(), type, referenceCustomerId). Sets `cpu_s`."""
        self._pipe.send("stop")
        arrivals: list[tuple[float, str, str]]
        self.cpu_s, arrivals = self._pipe.recv()
        self.process.join()
        return arrivals


def _wait_deliveries(receivers: list[Receiver], expected_each: int) -> float:
    """Seconds until every receiver has `expected_each` thresholds (or the bound passed)."""
    started = time.monotonic()
    while time.monotonic() - started < _DELIVERY_BOUND_S:
        if all(r.thresholds() >= expected_each for r in receivers):
            break
        time.sleep(0.05)
    return round(time.monotonic() - started, 2)


# -- the load -------------------------------------------------------------------------------------


def _post(port: int, path: str, body: dict[str, Any]) -> bytes:
    payload = msgspec.json.encode(body)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def _event(port: int, ref: str, key: str, units: int) -> bytes:
    body = {"eventName": "api_calls", "customerReferenceId": ref, "eventIdempotencyKey": key,
            "usageUnits": units}  # fmt: skip
    return _post(port, f"{C}/events", body)


def _drive(server: Server, requests: list[bytes], rate: float, connections: int) -> Timetable:
    """Send `requests` on the timetable of `rate` (uvloop; no collection pauses meanwhile)."""

    async def run() -> Timetable:
        return await run_timetable(
            requests.__getitem__, port=server.port, rate=rate, total=len(requests),
            connections=connections,
            timeout_s=len(requests) / min(rate, _ANSWER_RATE_MIN) + _ANSWER_BOUND_S,
        )  # fmt: skip

    gc.disable()  # nothing here makes cycles; a collection would only delay a send
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run())
    finally:
        gc.enable()


def _customers(server: Server, prefix: str, count: int) -> float:
    """Customers prefix0 .. on the free plan (closed loop); the seconds it took."""
    started = time.perf_counter()
    plans = httpx.get(f"{server.url}{C}/plans", headers={"Authorization": f"Bearer {KEY}"})
    free = next(p["plan"]["id"] for p in plans.json()["data"] if p["plan"]["key"] == "free")
    customers = [_post(server.port, f"{C}/customers", {"externalClientCustomerId": f"{prefix}{n}",
                 "firstName": "B", "lastName": "B", "email": "b@example.com"})
                 for n in range(count)]  # fmt: skip
    subscriptions = [_post(server.port, f"{C}/subscriptions",
                           {"customerReferenceId": f"{prefix}{n}", "planId": free})
                     for n in range(count)]  # fmt: skip
    for requests in (customers, subscriptions):  # each subscription needs its customer first
        statuses = _drive(server, requests, _ALL_AT_ONCE, 32).statuses
        assert statuses == {201: count}, statuses
    return round(time.perf_counter() - started, 2)


def _endpoint(server: Server, url: str) -> None:
    response = httpx.post(f"{server.url}{A}/webhooks", json={"url": url},
                          headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
    assert response.status_code == 201, response.text


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(_percentile(values, 50), 2), "p99": round(_percentile(values, 99), 2),
        "max": round(max(values), 2), "mean": round(statistics.fmean(values), 2),
    }  # fmt: skip


def _ms(values: Any) -> list[float]:
    return [v * 1000 for v in values if not math.isnan(v)]


def _latency_run(server: Server, rate: int, seconds: float, connections: int) -> dict[str, Any]:
    count = int(rate * seconds)
    receiver = Receiver()
    setup_s = _customers(server, "lat", count)
    _endpoint(server, receiver.url)
    requests = [_event(server.port, f"lat{k}", f"l{k}", 850) for k in range(count)]
    cpu, offset = time.process_time(), time.time() - time.perf_counter()
    table = _drive(server, requests, rate, connections)
    cpu = time.process_time() - cpu
    trailed_s = _wait_deliveries([receiver], count)
    arrived = {ref: at for at, kind, ref in receiver.finish() if kind == THRESHOLD}
    due = [offset + table.t0 + k / rate for k in range(count)]  # time.time() of each schedule
    from_201, from_send = [], []
    for k in range(count):
        at = arrived.get(f"lat{k}")
        if at is not None and not math.isnan(table.latency_s[k]):
            from_201.append((at - due[k] - table.latency_s[k]) * 1000)
            from_send.append((at - due[k]) * 1000)
    # Offered: as written to the sockets; a request waits in the generator only when all
    # connections are busy (the server's delay), or when the timer thread or loop is late.
    last_sent_s = max(k / rate + lag for k, lag in enumerate(table.send_lag_s))
    return {
        "rate_asked": rate, "events": count, "connections": connections,
        "schedule_s": round(count / rate, 2), "setup_s": setup_s,
        "offered_rate_achieved": round(count / (last_sent_s + 1 / rate), 1),
        "timer_lag_ms": _summary(_ms(table.timer_lag_s)),
        "send_lag_ms": _summary(_ms(table.send_lag_s)),
        "generator_cpu_us_per_event": round(cpu / count * 1e6, 1),
        "statuses": {str(k): v for k, v in sorted(table.statuses.items())},
        "answer_from_send_ms": _summary(_ms(table.latency_s)),  # scheduled send to 201
        "deliveries": len(from_201), "all_delivered": len(from_201) == count,
        "deliveries_trailed_s": trailed_s, "receiver_cpu_s": round(receiver.cpu_s, 2),
        "from_201_ms": _summary(from_201), "from_send_ms": _summary(from_send),
    }  # fmt: skip


def _units(events_per_customer: int) -> list[int]:
    """One customer's events: its 1000 calls, crossing 80% and then 100% on two of them."""
    if events_per_customer == 2:
        return [850, 150]  # each event crosses exactly one threshold
    if events_per_customer < 2 or 1000 % events_per_customer:
        sys.exit(f"--events-per-customer {events_per_customer}: 2, or N > 2 dividing 1000")
    return [1000 // events_per_customer] * events_per_customer


def _throughput_run(
    server: Server, endpoints: int, customers: int, concurrency: int, events_per_customer: int
) -> dict[str, Any]:
    receivers = [Receiver() for _ in range(endpoints)]
    prefix = f"tp{endpoints}_"
    setup_s = _customers(server, prefix, customers)
    for receiver in receivers:
        _endpoint(server, receiver.url)
    # Every customer's k-th event before any (k+1)-th: a customer's events go thousands of
    # requests apart, each crossing at most one threshold (80%, then 100%).
    requests = [
        _event(server.port, f"{prefix}{n}", f"{prefix}{k}_{n}", units)
        for k, units in enumerate(_units(events_per_customer))
        for n in range(customers)
    ]
    crossings = 2 * customers  # per receiver: 80% and 100% for every customer
    cpu = time.process_time()
    table = _drive(server, requests, _ALL_AT_ONCE, concurrency)
    cpu = time.process_time() - cpu
    answered = [k / _ALL_AT_ONCE + v for k, v in enumerate(table.latency_s) if not math.isnan(v)]
    elapsed = max(answered)
    trailed_s = _wait_deliveries(receivers, crossings)
    refs = {f"{prefix}{n}" for n in range(customers)}
    seen = sum(
        1 for r in receivers for _, kind, ref in r.finish() if kind == THRESHOLD and ref in refs
    )
    # Every request is due at t0 in a closed loop: its own latency runs from its write.
    written = [v - lag for v, lag in zip(table.latency_s, table.send_lag_s, strict=True)]
    return {
        "endpoints": endpoints, "events": len(requests), "connections": concurrency,
        "setup_s": setup_s, "seconds": round(elapsed, 2),
        "events_per_s": round(len(answered) / elapsed, 1),
        # Until the last delivery arrived too: the rate that leaves no backlog behind. The
        # answers alone reward a dispatcher that falls behind during the run (its deliveries
        # trail the last answer) with a better ratio.
        "events_per_s_until_delivered": round(len(answered) / (elapsed + trailed_s), 1),
        "generator_cpu_us_per_event": round(cpu / len(requests) * 1e6, 1),
        "generator_cpu_share": round(cpu / elapsed, 3),  # of one core, over the run
        "statuses": {str(k): v for k, v in sorted(table.statuses.items())},
        "unanswered": len(requests) - len(answered),
        "answer_ms": _summary(_ms(written)),  # from the request's write to its answer
        "receivers_cpu_s": round(sum(r.cpu_s for r in receivers), 2),
        "events_per_customer": events_per_customer,
        "deliveries_per_event": round(crossings * endpoints / len(requests), 3),
        "deliveries_expected": crossings * endpoints, "deliveries_seen": seen,
        "deliveries_trailed_s": trailed_s,
    }  # fmt: skip


def _check(port: int, ref: str) -> bytes:
    return (
        f"GET {C}/entitlements/{ref}/api_calls HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {KEY}\r\n\r\n"
    ).encode()


def _slow_endpoint_run(
    server: Server, delay_s: float | None, rate: int, seconds: float
) -> dict[str, Any]:
    """Checks and threshold-crossing events open-loop at `rate` (4 checks to 1 event), with
    one endpoint that answers each delivery `delay_s` late, or none (None): the checks'
    latency."""
    count = int(rate * seconds)
    customers = count // 5 + 1
    receiver = Receiver(delay_s=delay_s) if delay_s is not None else None
    setup_s = _customers(server, "slw", customers)
    if receiver is not None:
        _endpoint(server, receiver.url)
    requests = [
        _event(server.port, f"slw{k // 5}", f"s{k}", 850) if k % 5 == 0
        else _check(server.port, f"slw{k % customers}")
        for k in range(count)
    ]  # fmt: skip
    table = _drive(server, requests, rate, 32)
    checks = [v for k, v in enumerate(table.latency_s) if k % 5 and not math.isnan(v)]
    arrived = receiver.thresholds() if receiver is not None else 0
    if receiver is not None:
        receiver.finish()
    return {
        "endpoint_answers_after_s": delay_s,
        "rate": rate, "requests": count, "checks": len(checks), "setup_s": setup_s,
        "statuses": {str(k): v for k, v in sorted(table.statuses.items())},
        "check_ms": _summary(_ms(checks)),  # from the scheduled send to the answer
        "deliveries_received_during_run": arrived,  # at most 16 in flight (WHK-D26)
    }  # fmt: skip


# -- the run --------------------------------------------------------------------------------------


def _timeit_sum_range_1000_us() -> float:
    """`python -m timeit "sum(range(1000))"`, in µs: how fast this machine is today."""
    done = subprocess.run([sys.executable, "-m", "timeit", "sum(range(1000))"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    found = re.search(r"best of \d+: ([\d.]+) (nsec|usec|msec|sec) per loop", done.stdout)
    assert found is not None, done.stdout
    scale = {"nsec": 1e-3, "usec": 1.0, "msec": 1e3, "sec": 1e6}[found[2]]
    return round(float(found[1]) * scale, 2)


def _machine() -> dict[str, Any]:
    load = os.getloadavg()  # before the timeit below: other work on the machine, noise
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False, cwd=Path(__file__).parent)  # fmt: skip
    return {
        "cpus": multiprocessing.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "load_average_at_start": load,
        "timeit_sum_range_1000_us": _timeit_sum_range_1000_us(),
        "commit": commit.stdout.strip() or None,
    }  # fmt: skip


def _missed(run: dict[str, Any]) -> bool:
    return bool(run["deliveries_seen"] < run["deliveries_expected"])


def _pair_names(rounds: int) -> list[tuple[str, int]]:
    """The throughput runs in order, by name and endpoints: the pair, `rounds` times. One round
    keeps the names of earlier results (`throughput_no_endpoints`, `throughput_3_endpoints`)."""
    if rounds < 1:
        sys.exit("--rounds: at least 1")
    pair = [("throughput_no_endpoints", 0), ("throughput_3_endpoints", 3)]
    if rounds == 1:
        return pair
    return [(f"{name}_{k}", endpoints) for k in range(1, rounds + 1) for name, endpoints in pair]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500, help="latency: events/s asked")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: of the schedule")
    parser.add_argument("--connections", type=int, default=32, help="latency: keep-alive")
    parser.add_argument("--customers", type=int, default=5000, help="throughput: per run")
    parser.add_argument("--concurrency", type=int, default=64, help="throughput: connections")
    parser.add_argument("--server-args", default="", help="more flags for allotment serve "
                        "(e.g. --webhook-worker: delivery in a process of its own)")  # fmt: skip
    parser.add_argument("--events-per-customer", type=int, default=2,
                        help="throughput: 2 (each a crossing) or N > 2 dividing 1000")  # fmt: skip
    # --throughput-only: whp's name for the same flag, in the commands its results record.
    parser.add_argument("--skip-latency", "--throughput-only", action="store_true",
                        dest="skip_latency", help="throughput runs only")  # fmt: skip
    parser.add_argument("--slow-endpoint", action="store_true",
                        help="only: check latency, a 5 s endpoint against none")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1,
                        help="throughput: the pair (none, 3 endpoints) this many times, "
                        "each on a fresh server; the median of the ratios")  # fmt: skip
    parser.add_argument("--save", type=Path)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    sys.setswitchinterval(1e-4)  # the timer thread gets the GIL within 0.1 ms, not 5 ms
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.bench_webhooks", *sys.argv[1:]]),
        "machine": _machine(),
    }
    print("machine", results["machine"], flush=True)
    customers, concurrency, each = args.customers, args.concurrency, args.events_per_customer
    _units(each)  # refuses a bad N before any server starts
    runs: dict[str, Callable[[Server], dict[str, Any]]] = {
        "latency": lambda s: _latency_run(s, args.rate, args.seconds, args.connections),
    }
    for name, endpoints in _pair_names(args.rounds):
        runs[name] = partial(_throughput_run, endpoints=endpoints, customers=customers,
                             concurrency=concurrency, events_per_customer=each)  # fmt: skip
    if args.skip_latency:
        del runs["latency"]
    if args.slow_endpoint:  # alternating, each on a fresh server
        runs = {
            f"{name}_{k}": partial(_slow_endpoint_run, delay_s=delay_s, rate=args.rate,
                                   seconds=args.seconds)
            for k in (1, 2, 3) for name, delay_s in _SLOW_VARIANTS.items()
        }  # fmt: skip
    with tempfile.TemporaryDirectory() as root:
        for name, run in runs.items():
            (Path(root) / name).mkdir()
            flags = ["--allow-private-webhooks", *args.server_args.split()]
            server = Server(Path(root) / name, *flags, webhook_worker=None)  # serve's default
            try:
                results[name] = run(server)
            finally:
                server.stop()
            print(name, results[name], flush=True)
    results["load_average_at_end"] = os.getloadavg()  # the machine is shared: note its load
    if args.slow_endpoint:
        p99 = {name: statistics.median(results[f"{name}_{k}"]["check_ms"]["p99"] for k in (1, 2, 3))
               for name in _SLOW_VARIANTS}  # fmt: skip
        results["check_p99_ms_median"] = p99
        # The endpoint's slowness against a prompt one: what the clause is about.
        # Against none, the ratio also holds the cost of having an endpoint at all (every
        # message logged and sent).
        slow = p99["slow_endpoint"]
        results["check_p99_ratio_slow_to_prompt"] = round(slow / p99["prompt_endpoint"], 3)
        results["check_p99_ratio_slow_to_none"] = round(slow / p99["no_endpoint"], 3)
        print("check p99 ms:", p99)
        if args.save:
            args.save.write_text(json.dumps(results, indent=2) + "\n")
        return
    names = [name for name, _ in _pair_names(args.rounds)]
    ratios, untils = [], []
    for without_name, three_name in zip(names[::2], names[1::2], strict=True):
        without = results[without_name]["events_per_s"]
        ratios.append(round(results[three_name]["events_per_s"] / without, 3))
        untils.append(round(results[three_name]["events_per_s_until_delivered"] / without, 3))
    results["throughput_ratio"] = round(statistics.median(ratios), 3)
    results["throughput_ratio_until_delivered"] = round(statistics.median(untils), 3)
    if args.rounds > 1:
        results["throughput_ratios"], results["throughput_ratios_until_delivered"] = ratios, untils
    print("ratio 3 endpoints / none:", results["throughput_ratio"],
          "until delivered:", results["throughput_ratio_until_delivered"],
          "rounds:", ratios, untils)  # fmt: skip
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    missing = [n for n in names if _missed(results[n])]
    if not results.get("latency", {"all_delivered": True})["all_delivered"] or missing:
        sys.exit(f"some deliveries never arrived (see deliveries / deliveries_seen): {missing}")


if __name__ == "__main__":
    main()
