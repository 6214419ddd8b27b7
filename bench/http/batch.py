"""Batch ingest: `POST /api/v1/client/events/batch`, durable events per second.

The endpoint is an extension of the Tanso API (issue 6, item 3). The suite probes it first: a
404 or 405 means this build has none, and the figure says so instead of failing the suite.
The request body is `{"events": [EventRequest, ...]}`, each event carrying its own
`eventIdempotencyKey`; `lua/batch.lua` builds it.
"""

from __future__ import annotations

import secrets
import shlex
import statistics
import sys
import time
from typing import Any

import msgspec

from bench.http.scenarios import EVENT_PATH, Sizes
from bench.http.servers import request
from bench.http.wrk import run_wrk, wrk_command

__all__ = ("BATCH_PATH", "measure_batch_ingest", "probe_batch")

BATCH_PATH = "/api/v1/client/events/batch"


def _event(ref: str, key: str) -> dict[str, Any]:
    return {
        "eventName": "chat_completion", "featureKey": "ai_chat", "customerReferenceId": ref,
        "eventIdempotencyKey": key, "usageUnits": 1830,
        "costInput": {"model": "gpt-4o", "modelProvider": "openai", "inputTokens": 1200,
                      "outputTokens": 630},
    }  # fmt: skip


def probe_batch(port: int, key: str) -> tuple[bool, str]:
    """Whether the server has the batch endpoint and accepts the body shape we send."""
    nonce = secrets.token_hex(4)
    body = msgspec.json.encode({"events": [_event("c0", f"probe-{nonce}-{i}") for i in range(2)]})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, _, answer = request(port, "POST", BATCH_PATH, body, headers)
    if status in (404, 405):
        return False, f"{BATCH_PATH} answered {status}: not in this build"
    if status >= 300:
        return False, f"{BATCH_PATH} answered {status} to a 2-event batch: {answer[:300]!r}"
    return True, f"probe answered {status}"


def measure_batch_ingest(port: int, key: str, sizes: Sizes) -> dict[str, Any]:
    """Durable events per second through the batch endpoint (median of `sizes.runs` runs of
    wrk with `sizes.batch_size` events per request and few connections, so that the events in
    flight stay near the connection count times the batch size).

    Returns:
        The figure, or `{"available": False, "reason": ...}` when the endpoint is absent.
    """
    available, reason = probe_batch(port, key)
    if not available:
        print(f"[http] batch ingest skipped: {reason}", file=sys.stderr, flush=True)
        return {"available": False, "reason": reason}
    connections = max(2, sizes.connections // 8)
    url = f"http://127.0.0.1:{port}"
    runs = []
    for run in range(sizes.runs):
        args = [key, str(sizes.customers), str(sizes.batch_size), f"b{run}-{secrets.token_hex(4)}"]
        result = run_wrk(url, "batch.lua", args, sizes.threads, connections, sizes.duration_s)
        runs.append(result)
        print(f"[http] run {run + 1}/{sizes.runs} batch ingest: "
              f"{result.requests_per_s * sizes.batch_size:,.0f} events/s", file=sys.stderr,
              flush=True)  # fmt: skip
        time.sleep(sizes.settle_s)
    command = wrk_command(url, "batch.lua", [key, str(sizes.customers), str(sizes.batch_size),
                          "<nonce>"], sizes.threads, connections, sizes.duration_s)  # fmt: skip
    return {
        "available": True,
        "request": f"POST {BATCH_PATH} with {sizes.batch_size} events like {EVENT_PATH}",
        "batch_size": sizes.batch_size,
        "connections": connections,
        "threads": sizes.threads,
        "duration_s": sizes.duration_s,
        "runs": len(runs),
        "command": shlex.join(command),
        "events_per_s": round(statistics.median(r.requests_per_s for r in runs) * sizes.batch_size),
        "requests_per_s": round(statistics.median(r.requests_per_s for r in runs), 1),
        "latency_ms_p99": round(statistics.median(r.latency_us.p99 for r in runs) / 1000, 3),
        "non_2xx": sum(r.errors.status for r in runs),
        "item_failures": sum(r.item_failures for r in runs),
        "samples_events_per_s": [round(r.requests_per_s * sizes.batch_size) for r in runs],
    }
