"""Shards as Ray actors (issue 19, docs/scale-out.md): what micro-batching gains, and checks and
batch ingest through HTTP with 1, 2 and 4 shards and 1 and 2 front-door workers.

    PYTHONPATH=src .venv/bin/python -m bench.bench_ray [--seconds 5] [--customers 300] [--save]

Part 1, in-process: one shard actor on a local Ray cluster, 64 concurrent senders of single
events through `RemoteShard.ingest` for `seconds`, once micro-batched (1 ms, 256 events, the
defaults) and once with one Ray call per event (`batch_max=1`). Part 2: a real `allotment
serve` per configuration (its own local Ray cluster; shards 1 and workers 1 is the one-process
server, which does not use Ray), `customers` paid customers made through HTTP, then wrk: the
check (64 connections) and batch ingest (100 events a request, 16 connections). All in one run,
so the ratios compare figures taken on the same busy machine.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec

from allotment.config import Settings
from allotment.domain.commands import RecordUsage
from allotment.domain.state import Profile
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.remote_shard import RemoteMember, Replica
from allotment.wiring import shard_host_system
from bench.http.servers import free_port
from bench.http.wrk import run_wrk

RESULTS = Path(__file__).resolve().parent / "results"
KEY = "sk_test_" + "bench" * 6 + "ab"
C = "/api/v1/client"
GRID = ((1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2))  # (shards, workers)
SENDERS = 64


async def _send_for(member: RemoteMember, seconds: float, prefix: str) -> int:
    lookup = CustomerLookup(external_id="batcher")
    sent = 0
    deadline = time.monotonic() + seconds

    async def sender(n: int) -> None:
        nonlocal sent
        i = 0
        while time.monotonic() < deadline:
            event = RecordUsage(idempotency_key=f"{prefix}-{n}-{i}", event_name="api_calls",
                                occurred_at=datetime.now(UTC))  # fmt: skip
            await member.shard.ingest(lookup, event, None)
            sent, i = sent + 1, i + 1

    async with anyio.create_task_group() as tg:
        for n in range(SENDERS):
            tg.start_soon(sender, n)
    return sent


def batching(seconds: float, data_dir: Path) -> dict[str, Any]:
    """Events/s and events per Ray call, micro-batched and one call per event."""
    import ray  # noqa: PLC0415  only this part joins Ray in this process

    from allotment.runtime.ray_shard import RayChannel, host_actors, ray_members  # noqa: PLC0415

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="bench")
    settings = Settings(data_dir=data_dir, shards=1, durability="write")
    try:
        handles = host_actors(1, lambda k: partial(shard_host_system, settings, k))
        channel = RayChannel(handles[0], 0)

        async def measure() -> dict[str, Any]:
            view = (await ray_members([channel], ("test",)))["test"][0].replica.view
            figures: dict[str, Any] = {}
            for name, batch_max in (("batched", 256), ("one_call_per_event", 1)):
                member = RemoteMember(Replica(channel, "test", view, batch_max=batch_max))
                await member.shard.create_customer("batcher", Profile())
                started = time.monotonic()
                events = await _send_for(member, seconds, name)
                elapsed = time.monotonic() - started
                figures[name] = {
                    "events_per_s": round(events / elapsed),
                    "ray_calls": member.replica.batcher.calls,
                    "events_per_call": round(events / max(1, member.replica.batcher.calls), 1),
                }
            figures["gain"] = round(
                figures["batched"]["events_per_s"] / figures["one_call_per_event"]["events_per_s"],
                2,
            )
            return figures

        return anyio.run(measure)
    finally:
        ray.shutdown()


def _populate(url: str, customers: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        plans = client.get(f"{C}/plans").json()["data"]
        plan = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
        for i in range(customers):
            ref = f"c{i}"
            client.post(f"{C}/customers", json={"externalClientCustomerId": ref,
                        "firstName": "B", "lastName": "B", "email": "b@example.com"})  # fmt: skip
            sub = client.post(f"{C}/subscriptions", json={"customerReferenceId": ref,
                              "planId": plan}).json()["data"]  # fmt: skip
            client.post(f"{C}/billing/invoices/{sub['invoice']['id']}/mark-paid")


def _serve(
    shards: int, workers: int, data_dir: Path, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "allotment", "serve", "--data-dir", str(data_dir),
               "--port", str(port), "--api-key", KEY, "--durability", "write",
               "--shards", str(shards), "--workers", str(workers)]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # every worker listening: wait for /health/ready twice
        assert process.poll() is None, log.read_text()
        if log.read_text().count("(ready)") >= workers:
            return process, url
        time.sleep(0.2)
    raise RuntimeError(log.read_text())


def http_grid(seconds: float, customers: int, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for shards, workers in GRID:
        data_dir = workdir / f"s{shards}w{workers}"
        process, url = _serve(shards, workers, data_dir, workdir / f"s{shards}w{workers}.log")
        try:
            _populate(url, customers)
            check = run_wrk(url, "check.lua", [KEY, str(customers), "api_calls"], 2, 64, seconds)
            nonce = f"n{shards}{workers}{time.time_ns()}"
            batch = run_wrk(url, "batch.lua", [KEY, str(customers), "100", nonce], 2, 16, seconds)
        finally:
            process.terminate()
            process.wait(120)
        rows.append({
            "shards": shards, "workers": workers, "ray": (shards, workers) != (1, 1),
            "checks_per_s": round(check.requests_per_s),
            "check_p99_us": check.latency_us.p99,
            "check_errors": msgspec.to_builtins(check.errors),
            "batch_events_per_s": round(batch.requests_per_s * 100),
            "batch_item_failures": batch.item_failures,
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--parts", default="batching,http")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "command": " ".join(sys.argv), "machine": platform.platform(),
        "cores": len(__import__("os").sched_getaffinity(0)), "seconds": args.seconds,
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        if "batching" in args.parts:
            result["batching"] = batching(args.seconds, Path(work) / "batching")
            print(result["batching"], flush=True)
        if "http" in args.parts:
            result["http"] = http_grid(args.seconds, args.customers, Path(work))
    text = msgspec.json.format(msgspec.json.encode(result)).decode()
    print(text)
    if args.save:
        (RESULTS / f"{datetime.now(UTC):%Y-%m-%d}-ray-shards.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
