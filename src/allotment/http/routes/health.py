"""The public health endpoint: status only (OPS-K8). The counts it used to show (customers,
keys, buffers per environment) are the admin API's `GET /api/v1/admin/statistics`."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from allotment.http.context import AnyRequest, system_of
from allotment.http.errors import json_response

__all__ = ("health",)


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
    return json_response({"success": True, "data": {"status": "ok"}})
