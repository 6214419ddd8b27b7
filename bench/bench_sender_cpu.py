"""CPU per webhook delivery in the sending process (issue 15, "Performance": the throughput
with 3 endpoints was 0.58x the run without; the httpx sender was the cost named).

N deliveries to a local receiver in its own process (bench_webhooks' receiver: it answers 204
at once, so its CPU is not counted here), `--concurrency` at a time as the dispatcher sends
them, by each sender in turn, `--rounds` times alternating; the CPU time of this process
(`time.process_time`) per delivery, median of the rounds, side by side in one run. The body
and the signed headers are built once: both senders get the same bytes, and the cost measured
is the sender's alone.

    PYTHONPATH=src python -m bench.bench_sender_cpu \
        --save bench/results/<date>-webhook-sender-cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvloop

from allotment.webhooks.outbound import body_of
from allotment.webhooks.payloads import OutboundEvent
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.sender import Sender
from allotment.webhooks.signing import new_secret, signed_headers
from bench.baseline_senders import HttpxSender, PooledSender
from bench.bench_webhooks import Receiver


def _pooled() -> Sender:
    return PooledSender(allow_private=True)


def _protocol() -> Sender:
    return ProtocolSender(allow_private=True)


SENDERS: dict[str, Callable[[], Sender]] = {
    "httpx": HttpxSender,
    "h11_pool": _pooled,
    "protocol": _protocol,
}


async def _round(sender: Sender, url: str, count: int, concurrency: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for `count` deliveries, `concurrency` at a time."""
    event = OutboundEvent(
        id="msg_bench", type="entitlement.usage.threshold", timestamp=datetime.now(UTC),
        data={"customerId": "c", "referenceCustomerId": "acme", "featureKey": "api_calls",
              "threshold": {"percent": 80, "units": "800"}},
    )  # fmt: skip
    body = body_of(event)
    headers = signed_headers([new_secret()], event.id, int(time.time()), body)
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            answer = await sender.send(url, headers, body)
            assert answer.status_code == 204, answer

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def _measure(url: str, count: int, concurrency: int, rounds: int) -> dict[str, Any]:
    senders: dict[str, Sender] = {name: make() for name, make in SENDERS.items()}
    for sender in senders.values():
        await _round(sender, url, 200, concurrency)  # warm: connections open, code paths hot
    cpu: dict[str, list[float]] = {name: [] for name in senders}
    wall: dict[str, list[float]] = {name: [] for name in senders}
    for _ in range(rounds):
        for name, sender in senders.items():
            spent, elapsed = await _round(sender, url, count, concurrency)
            cpu[name].append(spent / count * 1e6)
            wall[name].append(count / elapsed)
    for sender in senders.values():
        await sender.aclose()
    result: dict[str, dict[str, Any]] = {
        name: {
            "cpu_us_per_delivery_median": round(statistics.median(cpu[name]), 1),
            "cpu_us_per_delivery_rounds": [round(v, 1) for v in cpu[name]],
            "deliveries_per_s_median": round(statistics.median(wall[name])),
        }
        for name in senders
    }
    httpx_, h11_, protocol = (result[name]["cpu_us_per_delivery_median"]
                              for name in ("httpx", "h11_pool", "protocol"))  # fmt: skip
    return {
        "senders": result,
        "cpu_ratio_after_over_before": round(h11_ / httpx_, 3),  # h11_pool over httpx
        "cpu_ratio_protocol_over_h11_pool": round(protocol / h11_, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="deliveries per round")
    parser.add_argument("--concurrency", type=int, default=16, help="requests at a time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--save", help="write the result as JSON here")
    parser.add_argument("--uvloop", action="store_true", help="the server's loop under granian")
    args = parser.parse_args()
    receiver = Receiver()
    try:
        measuring = _measure(receiver.url, args.count, args.concurrency, args.rounds)
        measured = uvloop.run(measuring) if args.uvloop else asyncio.run(measuring)
    finally:
        receiver.finish()
    result = {
        "bench": "webhook sender CPU per delivery (in-process, time.process_time)",
        "command": "PYTHONPATH=src python -m bench.bench_sender_cpu " + " ".join(sys.argv[1:]),
        "count": args.count, "concurrency": args.concurrency, "rounds": args.rounds,
        "loop": "uvloop" if args.uvloop else "asyncio",
        "python": platform.python_version(), "load_avg": os.getloadavg(),
        **measured,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.save:
        with open(args.save, "w") as out:
            json.dump(result, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
