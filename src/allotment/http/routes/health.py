"""Liveness and runtime statistics. Public: it reveals counts, never customer data."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from allotment.http.context import AnyRequest, system_of
from allotment.http.errors import json_response

__all__ = ("health",)


@get("/health", operation_id="health", opt={"public": True}, include_in_schema=False)
async def health(request: AnyRequest) -> Response[dict[str, Any]]:
    system = system_of(request)
    return json_response(
        {
            "success": True,
            "data": {"status": "ok", "now": system.clock.now(), "shards": system.statistics()},
        }
    )
