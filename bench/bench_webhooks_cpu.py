"""Webhooks (issue 15): the server's CPU per ingest and per delivery, which wall-clock ratios on a
shared 2-core machine cannot show (bench_webhooks' ratio moves with whatever else runs).

Each round runs the same closed-loop workload as bench_webhooks' throughput run (`--customers`
fresh customers on the free plan, their 850s then their 150s, every event crossing a threshold)
twice, on a fresh server each: with no endpoint, and with `--endpoints` receivers subscribed to
every event. The server's CPU time (utime + stime from /proc of every process in its process
group: `allotment serve` and its granian worker) is read before the events are sent and after
the last delivery has arrived, so every delivery's work is inside the window and setup is not.

- per ingest: CPU of the no-endpoint run / events;
- per delivery: (CPU with endpoints - CPU without) / deliveries, and the part of it in the
  kernel (stime: the sockets' writes and reads, the message log's writes);
- of that, the part left in the server's own processes (the hand-off to the webhook worker,
  WHK-D51) and the worker's part (`server_per_delivery_us`, `worker_per_delivery_us`; the
  worker runs only with `--server-args=--webhook-worker`).

Rounds alternate the two kinds so drifts of the machine hit both alike; medians are reported.

    PYTHONPATH=src:. python -m bench.bench_webhooks_cpu --save bench/results/<name>.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.reliability.server import Server

import allotment
from bench.bench_webhooks import (
    _ALL_AT_ONCE,
    THRESHOLD,
    Receiver,
    _customers,
    _drive,
    _endpoint,
    _event,
    _machine,
    _wait_deliveries,
)

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _group_cpu_s(group: int) -> tuple[float, float, float]:
    """(utime, stime) of every live process in process group `group`, and the part of their
    sum spent by the webhook worker (webhooks/worker.py, WHK-D50), in seconds."""
    user = system = worker = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == group:  # pgrp
            user += int(fields[11])
            system += int(fields[12])
            if b"allotment.webhooks.worker" in command:
                worker += int(fields[11]) + int(fields[12])
    return user * _TICK_S, system * _TICK_S, worker * _TICK_S


def _run(
    root: Path, endpoints: int, customers: int, concurrency: int, extra: list[str]
) -> dict[str, Any]:
    server = Server(root, "--allow-private-webhooks", *extra, webhook_worker=None)
    receivers = [Receiver() for _ in range(endpoints)]
    try:
        _customers(server, "c", customers)
        for receiver in receivers:
            _endpoint(server, receiver.url)
        requests = [_event(server.port, f"c{n}", f"a{n}", 850) for n in range(customers)]
        requests += [_event(server.port, f"c{n}", f"b{n}", 150) for n in range(customers)]
        time.sleep(0.5)  # setup's stragglers (snapshots, log writes) settle before the window
        before, started = _group_cpu_s(server.process.pid), time.perf_counter()
        table = _drive(server, requests, _ALL_AT_ONCE, concurrency)
        answered_s = time.perf_counter() - started
        if endpoints:
            _wait_deliveries(receivers, len(requests))
        after = _group_cpu_s(server.process.pid)
        seen = sum(1 for r in receivers for _, kind, ref in r.finish() if kind == THRESHOLD and ref)
    finally:
        server.stop()
    return {
        "endpoints": endpoints, "events": len(requests), "statuses": dict(table.statuses),
        "answered_s": round(answered_s, 2),
        "server_cpu_s": round(after[0] + after[1] - before[0] - before[1], 3),
        "server_system_s": round(after[1] - before[1], 3),
        "worker_cpu_s": round(after[2] - before[2], 3),  # of server_cpu_s
        "deliveries_expected": len(requests) * endpoints, "deliveries_seen": seen,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-args", default="", help="more flags for allotment serve")
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.bench_webhooks_cpu", *sys.argv[1:]]),
        # The server measured is the allotment the PYTHONPATH gives (and the servers inherit):
        # for a before/after, an export of the older commit's src/ may come first.
        "server_src": str(Path(allotment.__file__).parent),
        "machine": _machine(),
        "runs": [],
    }
    print("machine", results["machine"], flush=True)
    per_ingest, per_delivery, system_per_delivery = [], [], []
    server_per_delivery, worker_per_delivery = [], []
    with tempfile.TemporaryDirectory() as root:
        for k in range(args.rounds):
            pair = {}
            # Alternate which goes first, so a drift of the machine within a round cancels.
            for endpoints in (0, args.endpoints) if k % 2 == 0 else (args.endpoints, 0):
                directory = Path(root) / f"r{k}e{endpoints}"
                directory.mkdir()
                pair[endpoints] = run = _run(directory, endpoints, args.customers, args.concurrency,
                                         args.server_args.split())  # fmt: skip
                results["runs"].append(run)
                print(run, flush=True)
            none, some = pair[0], pair[args.endpoints]
            per_ingest.append(none["server_cpu_s"] / none["events"] * 1e6)
            extra = some["server_cpu_s"] - none["server_cpu_s"]
            per_delivery.append(extra / some["deliveries_expected"] * 1e6)
            extra_system = some["server_system_s"] - none["server_system_s"]
            system_per_delivery.append(extra_system / some["deliveries_expected"] * 1e6)
            # The server's own process(es) and the worker's, each with endpoints minus without:
            # what stays on ingest's side per delivery, and what the second core takes.
            in_server = (some["server_cpu_s"] - some["worker_cpu_s"]) - (
                none["server_cpu_s"] - none["worker_cpu_s"]
            )
            server_per_delivery.append(in_server / some["deliveries_expected"] * 1e6)
            in_worker = some["worker_cpu_s"] - none["worker_cpu_s"]
            worker_per_delivery.append(in_worker / some["deliveries_expected"] * 1e6)
    results["load_average_at_end"] = os.getloadavg()
    results["per_ingest_us"] = [round(v, 1) for v in per_ingest]
    results["per_delivery_us"] = [round(v, 1) for v in per_delivery]
    results["per_delivery_system_us"] = [round(v, 1) for v in system_per_delivery]
    results["server_per_delivery_us"] = [round(v, 1) for v in server_per_delivery]
    results["worker_per_delivery_us"] = [round(v, 1) for v in worker_per_delivery]
    results["per_ingest_us_median"] = round(statistics.median(per_ingest), 1)
    results["per_delivery_us_median"] = round(statistics.median(per_delivery), 1)
    for name in ("per_ingest_us", "per_delivery_us", "per_delivery_system_us",
                 "server_per_delivery_us", "worker_per_delivery_us",
                 "per_ingest_us_median", "per_delivery_us_median"):  # fmt: skip
        print(name, results[name])
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")
    if any(r["deliveries_seen"] != r["deliveries_expected"] for r in results["runs"]):
        sys.exit("some deliveries never arrived")


if __name__ == "__main__":
    main()
