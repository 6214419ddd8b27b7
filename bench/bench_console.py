"""Issue 20 item 4: every console page renders in under 100 ms at p95 with 100k customers.

Builds 100k customers in-process on a data directory (durability `none`, as bench_scale does:
this measures reads, not fsync), each subscribed (a third of the initial invoices left DUE),
with one usage event each, `ai_chat` burning credits for the plans that grant them; the manual
clock moves a minute every 2,000 customers so the events spread over the last hour. Then it
takes an analytics snapshot, signs in to the console through its form, and renders each page
`--runs` times through the whole ASGI app (httpx's ASGI transport on this event loop: the
routing, the guard, the templates, the same runtime calls a browser's request makes),
reporting p50, p95 and max.

`overview` is what a browser sees (the figures are kept `KEEP_S` while the clock reads the
same instant); `overview (cold)` forgets them before every render, so each render reads the
snapshot. The fallbacks a server without a data directory uses are timed too (one pass of
`Shard.all_customers`), outside the app: they are what the snapshot read replaces.

    PYTHONPATH=src python -m bench.bench_console [--customers 100000] [--runs 50] [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx

from allotment.config import Settings
from allotment.console.invoices import live_statuses, scan_invoices
from allotment.console.overview_data import forget, scan_shard
from allotment.domain.commands import MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.replies import Subscribed, UsageAccepted
from allotment.domain.state import Profile
from allotment.http.app import create_app
from allotment.runtime.analytics_reads import InvoiceQuery
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system, key_store, webhook_service
from bench.report import machine

KEY = "sk_test_" + "b" * 32
START = datetime(2026, 3, 1, tzinfo=UTC)
TARGET_P95_MS = 100.0
PAGES = {
    "overview": "/console/",
    "plans": "/console/plans",
    "invoices (DUE)": "/console/invoices?status=DUE",
    "invoices (any, last 30 days)": "/console/invoices?age=30",
    "webhooks & keys": "/console/webhooks",
    "clock": "/console/clock",
    "customers (console-core's)": "/console/customers",
}


def _customer_pages(customers: int) -> dict[str, str]:
    """One customer's pages: a customer from the middle of the creation order."""
    ref = f"c{customers // 2 + 1}"
    return {
        "customers, search by email": f"/console/customers?q={ref}%40example.com",
        "customer detail": f"/console/customers/{ref}",
    }


PLANS = ("pro_monthly", "starter_monthly", "enterprise_monthly", "usage_monthly", "free")


def _progress(message: str) -> None:
    print(f"[bench_console] {message}", file=sys.stderr, flush=True)


async def _customer(system: ActorSystem, plans: dict[str, Any], index: int) -> None:
    shard = system.shard("test")
    ref = f"c{index}"
    lookup = CustomerLookup(external_id=ref)
    await shard.create_customer(ref, Profile(first_name="Bench", email=f"{ref}@example.com"))
    reply = await shard.command(lookup, Subscribe(plan_id=plans[PLANS[index % len(PLANS)]].id))
    assert isinstance(reply, Subscribed), reply
    if index % 3 and reply.invoice.status == "DUE":
        await shard.command(lookup, MarkInvoicePaid(invoice_id=reply.invoice.id))
    feature = "ai_chat" if PLANS[index % len(PLANS)] in PLANS[:3] else "api_calls"
    event = RecordUsage(idempotency_key=f"e{index}", event_name=feature, feature_key=feature,
                        occurred_at=system.clock.now(), units=Decimal(1000))  # fmt: skip
    accepted = await shard.ingest(lookup, event, None)
    assert isinstance(accepted, UsageAccepted), accepted


async def _populate(system: ActorSystem, customers: int) -> float:
    plans = {p.key: p for p in system.shard("test").catalog.plans.values()}
    started = time.perf_counter()
    for index in range(customers):
        await _customer(system, plans, index)
        if (index + 1) % 2_000 == 0:
            await system.advance_clock(system.clock.now() + timedelta(minutes=1))
            system.shard("test").audits.drain()
        if (index + 1) % 20_000 == 0:
            _progress(f"{index + 1:,} customers")
    assert system.storage is not None
    await system.storage.journal("test").flush()
    return time.perf_counter() - started


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    """The app's ASGI lifespan on this event loop (Litestar's test clients run the app on a
    thread of their own, where the shard this bench builds directly could not be reached)."""
    to_app, app_reads = anyio.create_memory_object_stream[dict[str, Any]](4)
    app_sends, from_app = anyio.create_memory_object_stream[dict[str, Any]](4)

    async def serve() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                  app_reads.receive, app_sends.send)  # fmt: skip

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        await to_app.send({"type": "lifespan.startup"})
        started = await from_app.receive()
        assert started["type"] == "lifespan.startup.complete", started
        try:
            yield
        finally:
            await to_app.send({"type": "lifespan.shutdown"})
            await from_app.receive()


async def _sign_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/console/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text
    signed = await client.post(
        "/console/sign-in",
        data={"csrf_token": token.group(1), "api_key": KEY, "next": "/console/"},
        headers={"origin": str(client.base_url).rstrip("/")},
    )
    assert signed.status_code == 303, signed.text


def _figures(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
        "runs": len(ordered),
    }


async def _timed(runs: int, render: Callable[[], Awaitable[None]]) -> dict[str, float]:
    for _ in range(3):  # warm: templates compiled, the first snapshot connection made
        await render()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await render()
        samples.append((time.perf_counter() - started) * 1000)
    return _figures(samples)


async def _pages(
    client: httpx.AsyncClient, system: ActorSystem, runs: int, customers: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in (PAGES | _customer_pages(customers)).items():

        async def render(path: str = path) -> None:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        out[name] = await _timed(runs, render)
        _progress(f"{name}: {out[name]}")

    async def cold() -> None:
        forget(system, "test")
        response = await client.get("/console/")
        assert response.status_code == 200

    out["overview (cold: the snapshot read every render)"] = await _timed(runs, cold)
    return out


async def _parts(system: ActorSystem, runs: int) -> dict[str, Any]:
    """Where an invoices page's time goes: the snapshot query (on a worker thread), and the
    live read of each listed row (one turn of its customer each)."""
    reads = system.analytics_reads
    assert reads is not None
    shard = system.route("test")
    now = system.clock.now()
    listed = (await reads.invoices("test", InvoiceQuery(statuses=("DUE",)))).rows

    async def query_due() -> None:
        await reads.invoices("test", InvoiceQuery(statuses=("DUE",)))

    async def query_recent() -> None:
        await reads.invoices("test", InvoiceQuery(created_from=now - timedelta(days=30)))

    async def live_rows() -> None:
        await live_statuses(shard, listed, now)

    return {
        "snapshot query, DUE": await _timed(runs, query_due),
        "snapshot query, last 30 days": await _timed(runs, query_recent),
        f"live reads of the {len(listed)} listed rows": await _timed(runs, live_rows),
    }


async def _fallbacks(system: ActorSystem, runs: int) -> dict[str, Any]:
    """What a server without a data directory does instead of the snapshot read."""
    shard = system.shard("test")
    now = system.clock.now()

    async def overview_scan() -> None:
        await scan_shard(shard, now)

    async def invoice_scan() -> None:
        await scan_invoices(shard, InvoiceQuery(statuses=("DUE",)))

    return {
        "overview scan (Shard.all_customers)": await _timed(max(runs // 5, 3), overview_scan),
        "invoices scan (Shard.all_customers)": await _timed(max(runs // 5, 3), invoice_scan),
    }


async def run(customers: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), clock="manual", durability="none", api_keys=[KEY],
            snapshot_every_s=1e9, snapshot_every_records=2**62, analytics_every_s=1e9,
            allow_private_webhooks=True,  # the page lists an endpoint; nothing is sent to it
        )  # fmt: skip
        webhooks = webhook_service(settings)
        system = build_system(settings, ManualClock(START), webhooks=webhooks)
        webhooks.now = system.clock.now
        app = create_app(settings, system, key_store(settings), webhooks=webhooks)
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with (
            _lifespan(app),
            httpx.AsyncClient(transport=transport, base_url="http://console.bench") as client,
        ):
            build_s = await _populate(system, customers)
            started = time.perf_counter()
            await system.snapshot_analytics()
            snapshot_s = time.perf_counter() - started
            await webhooks.create_endpoint("test", "http://127.0.0.1:9/hook", (), "bench")
            await _sign_in(client)
            pages = await _pages(client, system, runs, customers)
            parts = await _parts(system, runs)
            fallbacks = await _fallbacks(system, runs)
    return {
        "customers": customers, "build_s": round(build_s, 1),
        "analytics_snapshot_s": round(snapshot_s, 2), "pages": pages,
        "invoices_page_parts": parts,
        "without_a_data_directory": fallbacks,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    load_before = os.getloadavg()
    figures = anyio.run(run, args.customers, args.runs)
    load_after = os.getloadavg()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    document = {
        "bench": "console pages (issue 20, item 4)",
        "command": "PYTHONPATH=src python -m bench.bench_console " + " ".join(sys.argv[1:]),
        "commit": commit,
        "machine": machine(),
        # The machine is shared: its load (1, 5, 15 min) says how much else was running.
        "load_average": {"before": load_before, "after": load_after},
        "target": f"every page p95 < {TARGET_P95_MS:.0f} ms",
        "met": {name: f["p95_ms"] < TARGET_P95_MS for name, f in figures["pages"].items()},
        **figures,
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.save:
        args.save.write_text(text + "\n")


if __name__ == "__main__":
    main()
