"""Webhooks (issue 15): the delivery path's CPU per delivery, in one process, without the
HTTP front door or the journal: bench_webhooks_cpu's figure moves by +-15% between rounds,
too coarse to tell a cut of a few microseconds.

A real `Dispatcher` (its message log on disk, the server's `ProtocolSender`) is handed
`--events` notifications through `committed`, as the turn hands them, each addressed to
`--endpoints` endpoints (bench_webhooks' receivers, in processes of their own, answering 204
at once). The CPU time of this process (`time.process_time`: user + system, the sockets' and
the log's syscalls included) from the first `committed` to the last delivery's arrival,
divided by the deliveries. Rounds run one after another in the same process; the median is
reported. The bodies are rendered once beforehand, so the figure is the delivery path's
alone: fan-out, message log, signing, sending, outcomes.

    PYTHONPATH=src:. python -m bench.bench_delivery_cpu --save bench/results/<name>.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import uvloop

from allotment.webhooks.dispatcher import Dispatcher
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import MessageLog
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.signing import new_secret
from bench.bench_webhooks import THRESHOLD, Receiver, _machine

_START = datetime(2026, 12, 1, tzinfo=UTC)
_DATA = {  # the shape of a threshold notification's payload (docs/webhooks.md)
    "customerId": str(uuid.UUID(int=7)), "referenceCustomerId": "customer-7",
    "featureKey": "api_calls", "threshold": 80, "periodStart": "2026-12-01T00:00:00Z",
    "periodEnd": "2027-01-01T00:00:00Z",
    "usage": {"used": "850", "maxUsage": "1000", "remaining": "150", "percent": "85"},
}  # fmt: skip


async def _no_disable(endpoint_id: str, reason: str) -> None:
    raise AssertionError("the receivers answer 204")


async def _round(root: Path, receivers: list[Receiver], events: int) -> tuple[float, float]:
    """CPU per delivery, in all and in the kernel (microseconds)."""
    endpoints = {
        f"ep_{k}": Endpoint(
            id=f"ep_{k}", environment="test", url=r.url, secret=new_secret(), created_at=_START
        )
        for k, r in enumerate(receivers)
    }
    rendered = [
        [
            OutboundEvent(
                id=f"msg_{uuid.uuid4().hex}",
                type=THRESHOLD,
                timestamp=_START,
                data={**_DATA, "referenceCustomerId": f"c{n}"},
            )
        ]
        for n in range(events)
    ]
    queue = iter(rendered)
    dispatcher = Dispatcher(
        "test", lambda: endpoints, _no_disable, MessageLog(root), lambda: _START,
        ProtocolSender(allow_private=True), lambda customer, external, facts: next(queue),
        backlog_max=10 * events,
    )  # fmt: skip
    before = [r.thresholds() for r in receivers]
    async with anyio.create_task_group() as tg:
        dispatcher.start(tg)
        started = resource.getrusage(resource.RUSAGE_SELF)
        for position in range(1, events + 1):
            dispatcher.committed(position, uuid.UUID(int=position), None, (), None)
            if position % 64 == 0:  # as group commits hand them: a batch, then the loop runs
                await anyio.lowlevel.checkpoint()
        # The receivers are other processes: their counts are polled, not timed.
        while any(  # noqa: ASYNC110
            r.thresholds() - b < events for r, b in zip(receivers, before, strict=True)
        ):
            await anyio.sleep(0.01)
        ended = resource.getrusage(resource.RUSAGE_SELF)
        tg.cancel_scope.cancel()
    deliveries = events * len(receivers)
    user, system = ended.ru_utime - started.ru_utime, ended.ru_stime - started.ru_stime
    return (user + system) / deliveries * 1e6, system / deliveries * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    receivers = [Receiver() for _ in range(args.endpoints)]
    per_delivery: list[float] = []
    in_kernel: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as root:
            for k in range(args.rounds):
                directory = Path(root) / f"r{k}"
                cpu, system = uvloop.run(_round(directory, receivers, args.events))
                per_delivery.append(cpu)
                in_kernel.append(system)
                print(f"round {k}: {cpu:.1f} us per delivery, {system:.1f} in the kernel",
                      flush=True)  # fmt: skip
    finally:
        for receiver in receivers:
            receiver.finish()
    all_deliveries = args.rounds * args.events * args.endpoints
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.bench_delivery_cpu", *sys.argv[1:]]),
        "machine": _machine(),
        "events": args.events, "endpoints": args.endpoints,
        "per_delivery_us": [round(v, 1) for v in per_delivery],
        "per_delivery_us_median": round(statistics.median(per_delivery), 1),
        "in_kernel_us": [round(v, 1) for v in in_kernel],
        "in_kernel_us_median": round(statistics.median(in_kernel), 1),
        # The receivers' CPU (bench_webhooks' `_Receiver`), all rounds: theirs, not ours.
        "receiver_us": round(sum(r.cpu_s for r in receivers) / all_deliveries * 1e6, 1),
    }  # fmt: skip
    print("median", results["per_delivery_us_median"], "us per delivery,",
          results["in_kernel_us_median"], "in the kernel; a receiver's",
          results["receiver_us"])  # fmt: skip
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
