"""Liveness and runtime statistics. Public: it reveals counts, never customer data."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from allotment.http.context import AnyRequest, system_of
from allotment.http.errors import json_response

__all__ = ("health",)


@get("/health", operation_id="health", opt={"public": True}, include_in_schema=False)
async def health(request: AnyRequest) -> Response[dict[str, Any]]:
    """200 while every shard serves; 503 with each failed shard's reason while one waits to be
    rebuilt from disk (a load balancer takes the instance out; an operator reads why)."""
    system = system_of(request)
    shards = system.statistics()
    failures = [f"{s.environment}: {s.failure}" for s in shards if s.failure is not None]
    data = {"status": "failed" if failures else "ok", "now": system.clock.now(), "shards": shards}
    if failures:
        body = {
            "success": False,
            "error": {"message": "Service unavailable: " + "; ".join(failures)},
        }
        response = json_response(body, status=503)
        response.headers["retry-after"] = "5"
        return response
    return json_response({"success": True, "data": data})
