"""Health, public and status only (OPS-K8, OPS-P9, OPS-P10): `/health` (ok, or 503 with each
failed shard's reason), `/health/live` and `/health/ready` (`{"status", "reason"}`). A load
balancer or an orchestrator needs nothing more, and a stranger learns nothing else: the counts
(customers, keys, buffers per environment) are the admin API's `GET /api/v1/admin/statistics`.
Presented with an admin key, `/health` also shows each webhook endpoint's backlog against its
cap (WHK-D28a), as an actuator shows details only when authorised; with a delivery worker,
as the worker says now, or `null` and why when it does not answer within
`WEBHOOK_STATISTICS_BOUND_S` (health never waits on the worker longer than that).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get

from allotment.http.auth import presented_key
from allotment.http.context import AnyRequest, keys_of, settings_of, system_of
from allotment.http.errors import json_response
from allotment.runtime.readiness import readiness
from allotment.webhooks.ports import WebhookAdmin

__all__ = ("WEBHOOK_STATISTICS_BOUND_S", "health", "live", "ready")

# An idle worker answers in milliseconds; past this, a stopped or overloaded worker must not
# make /health itself slow (a probe's timeout is a few seconds), so the backlog is unknown.
WEBHOOK_STATISTICS_BOUND_S = 1.0


class HealthStatus(msgspec.Struct, frozen=True):
    status: str  # live: "alive"; ready: "ready" or "not ready"
    reason: str


@get("/health", operation_id="health", opt={"public": True}, include_in_schema=False)
async def health(request: AnyRequest) -> Response[dict[str, Any]]:
    """200 while every shard serves; 503 with each failed shard's reason while one waits to be
    rebuilt from disk (a load balancer takes the instance out; an operator reads why). Nothing
    else: anyone who can reach the port can read it."""
    shards = system_of(request).statistics()
    failures = [f"{s.environment}: {s.failure}" for s in shards if s.failure is not None]
    if failures:
        body = {
            "success": False,
            "error": {"message": "Service unavailable: " + "; ".join(failures)},
        }
        response = json_response(body, status=503)
        response.headers["retry-after"] = "5"
        return response
    data: dict[str, Any] = {"status": "ok"}
    webhooks: WebhookAdmin | None = request.app.state.get("webhooks")
    if webhooks is not None and _admin(request):
        rows = await webhooks.statistics_now(WEBHOOK_STATISTICS_BOUND_S)
        data["webhooks"] = rows
        if rows is None:
            data["webhooks_unknown"] = (
                f"the webhook worker did not answer within {WEBHOOK_STATISTICS_BOUND_S:g} s"
            )
    return json_response({"success": True, "data": data})


def _admin(request: AnyRequest) -> bool:
    """Whether the request presents a valid admin key (a public route is not authenticated by
    the middleware; a missing or wrong key just sees the public answer)."""
    presented = presented_key(request.scope)
    key = keys_of(request).authenticate(presented) if presented else None
    return key is not None and "admin" in key.scopes


@get("/health/live", operation_id="healthLive", opt={"public": True}, include_in_schema=False)
async def live() -> Response[HealthStatus]:
    """200 whenever the process answers: restart it only when this fails (OPS-P10)."""
    return json_response(HealthStatus("alive", "the server process answers requests"))


@get("/health/ready", operation_id="healthReady", opt={"public": True}, include_in_schema=False)
async def ready(request: AnyRequest) -> Response[HealthStatus]:
    """200 when requests will be served; 503 with every reason they would not be (OPS-P9)."""
    settings = settings_of(request)
    answer = await readiness(system_of(request), settings.disk_free_min_bytes)
    if answer.ready:
        return json_response(HealthStatus("ready", answer.reason))
    response = json_response(HealthStatus("not ready", answer.reason), status=503)
    response.headers["retry-after"] = "5"
    return response
