"""The one table from failures to HTTP: every error leaves in the API envelope (API-5)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, NoReturn, TypeVar, cast

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from allotment.domain.replies import Rejected, RejectionKind
from allotment.http.schemas import ApiResponseError, ErrorObject
from allotment.runtime.errors import Overloaded, ShardUnavailable

__all__ = (
    "ENCODER",
    "REJECTION_STATUS",
    "ApiError",
    "Failure",
    "PlainFailure",
    "encoded_response",
    "exception_handlers",
    "failure_of",
    "json_response",
    "plain_failure",
    "raise_rejection",
)

logger = logging.getLogger("allotment.http")
T = TypeVar("T")

# Amounts leave as JSON numbers (API-8), never strings and never through a float.
ENCODER = msgspec.json.Encoder(decimal_format="number")

REJECTION_STATUS = {
    RejectionKind.INVALID: 400,
    RejectionKind.NOT_FOUND: 404,
    RejectionKind.CONFLICT: 409,
}
_HTTP_MESSAGES = {
    400: "Bad request.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    429: "Too many requests.",
}


class ApiError(Exception):
    """A request that cannot be served, with the status and message the client sees."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def json_response(payload: T, status: int = 200) -> Response[T]:
    """`payload` encoded once with exact decimals. The type parameter is what OpenAPI shows;
    the content is already bytes, so Litestar sends it as is."""
    return encoded_response(ENCODER.encode(payload), status)


def encoded_response(body: bytes, status: int = 200) -> Response[Any]:
    """A JSON body already encoded (by a function the fast path shares)."""
    return Response(content=body, status_code=status, media_type=MediaType.JSON)


# The wire name of each command field a domain rejection may name (its `field`).
_WIRE_FIELDS = {
    "customer": "customerReferenceId",
    "event_key": "eventIdempotencyKey",
    "feature_key": "featureKey",
    "items": "items",
    "reservation_id": "reservationId",
    "ttl_seconds": "ttlSeconds",
    "units": "units",
    "usage_units": "usageUnits",
}


def raise_rejection(rejected: Rejected) -> NoReturn:
    message = rejected.message
    if rejected.field is not None:  # named as the client sent it
        message = f"Invalid field '{_WIRE_FIELDS.get(rejected.field, rejected.field)}': {message}"
    raise ApiError(REJECTION_STATUS[rejected.kind], message)


class Failure(NamedTuple):
    """What the client receives for a failure: status, envelope bytes and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str]


def _failure(status: int, message: str, detail: str | None = None, **headers: str) -> Failure:
    body = ApiResponseError(success=False, error=ErrorObject(message=message, detail=detail))
    return Failure(status, ENCODER.encode(body), headers)


def failure_of(exc: Exception, where: str) -> Failure:
    """The failure table, shared by Litestar's exception handlers and the fast path (`where`
    names the request in the log of an unexpected error)."""
    if isinstance(exc, ApiError):
        return _failure(exc.status, exc.message, exc.detail)
    if isinstance(exc, ShardUnavailable):
        message = "Service unavailable: the server is recovering its state from disk; retry later."
        return _failure(503, message, exc.reason, **{"retry-after": str(exc.retry_after_s)})
    if isinstance(exc, Overloaded):
        message = f"Service unavailable: {exc.reason}."
        return _failure(503, message, **{"retry-after": str(exc.retry_after_s)})
    if isinstance(exc, HTTPException):
        status = exc.status_code
        message = _HTTP_MESSAGES.get(status, exc.detail or "Request failed.")
        allow = (exc.headers or {}).get("allow") if status == 405 else None
        return _failure(status, message, **({"allow": allow} if allow else {}))
    logger.exception("unhandled error on %s", where, exc_info=exc)
    return _failure(500, "Internal server error.")  # API-9: generic, nothing leaked


class PlainFailure(NamedTuple):
    """A failure as the peer surfaces (OpenMeter, Flexprice) tell it: the status, the detail
    the client may read (None: the surface's own words for the status; nothing about an
    unexpected failure leaks) and the extra headers."""

    status: int
    detail: str | None
    headers: dict[str, str] | None
    unexpected: bool = False  # a bug, logged: its 500 says nothing of it


def plain_failure(exc: Exception, where: str, log: logging.Logger) -> PlainFailure:
    """The failure table of the peer surfaces, for what their routes do not raise in their
    own error type (`where` names the request in `log`'s record of an unexpected error)."""
    if isinstance(exc, ApiError):  # raised before the route: authentication (401, 403)
        return PlainFailure(exc.status, exc.detail or exc.message, None)
    if isinstance(exc, ShardUnavailable):
        detail = f"the server is recovering its state from disk; retry later ({exc.reason})"
        return PlainFailure(503, detail, {"retry-after": str(exc.retry_after_s)})
    if isinstance(exc, Overloaded):
        return PlainFailure(503, exc.reason, {"retry-after": str(exc.retry_after_s)})
    if isinstance(exc, HTTPException):
        status = exc.status_code
        allow = (exc.headers or {}).get("allow") if status == 405 else None
        return PlainFailure(status, exc.detail if status < 500 else None,
                            {"allow": allow} if allow else None)  # fmt: skip
    log.exception("unhandled error on %s", where, exc_info=exc)
    return PlainFailure(500, None, None, unexpected=True)


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[ApiResponseError]:
    failure = failure_of(exc, f"{request.method} {request.url.path}")
    response = Response(
        content=failure.body,
        status_code=failure.status,
        media_type=MediaType.JSON,
        headers=failure.headers,
    )
    return cast("Response[ApiResponseError]", response)


exception_handlers = {
    ApiError: _handle,
    ShardUnavailable: _handle,
    Overloaded: _handle,
    HTTPException: _handle,
    Exception: _handle,
}
