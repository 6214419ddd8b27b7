"""A typed client for allotment's HTTP API: the Tanso Client API and the reservation
extension, blocking (`Client`) or async (`AsyncClient`), on httpx with msgspec models.

    from allotment.client import Client

    with Client("http://127.0.0.1:8000", api_key) as client:
        with client.reserve("cust_1", "ai_tokens", 5000) as hold:
            reply = call_the_model(...)
            hold.usage_units = reply.usage.total_tokens

This package is an edge: it imports neither the server (Litestar, the runtime, the domain)
nor DuckDB, so it installs and imports light (an import-linter contract checks it).
"""

from allotment.client.aio import AsyncClient
from allotment.client.aio_reservations import AsyncHold, PendingHold
from allotment.client.errors import (
    AllotmentError,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ReservationDenied,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
)
from allotment.client.models import CostInput, UsageEvent
from allotment.client.reservation_models import CommitItem, HoldItem, PreflightReserve
from allotment.client.sync import Client
from allotment.client.sync_reservations import Hold

__all__ = (
    "AllotmentError",
    "ApiError",
    "AsyncClient",
    "AsyncHold",
    "BadRequest",
    "Client",
    "CommitItem",
    "Conflict",
    "CostInput",
    "Forbidden",
    "Hold",
    "HoldItem",
    "NotFound",
    "PendingHold",
    "PreflightReserve",
    "RateLimited",
    "ReservationDenied",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "UsageEvent",
)
