"""The one table from failures to HTTP: every error leaves in the API envelope (API-5)."""

from __future__ import annotations

import logging
from typing import Any, NoReturn, TypeVar, cast

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from allotment.domain.replies import Rejected, RejectionKind
from allotment.http.schemas import ApiResponseError, ErrorObject
from allotment.persistence.errors import JournalUnavailable

__all__ = (
    "ENCODER",
    "REJECTION_STATUS",
    "ApiError",
    "exception_handlers",
    "json_response",
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
    response = Response(
        content=ENCODER.encode(payload), status_code=status, media_type=MediaType.JSON
    )
    return cast("Response[T]", response)


def error_response(
    status: int, message: str, detail: str | None = None
) -> Response[ApiResponseError]:
    body = ApiResponseError(success=False, error=ErrorObject(message=message, detail=detail))
    return json_response(body, status)


def raise_rejection(rejected: Rejected) -> NoReturn:
    raise ApiError(REJECTION_STATUS[rejected.kind], rejected.message)


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[ApiResponseError]:
    return error_response(exc.status, exc.message, exc.detail)


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ApiResponseError]:
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status, exc.detail or "Request failed.")
    if status == 405:
        response = error_response(status, message)
        allow = (exc.headers or {}).get("allow")
        if allow:
            response.headers["allow"] = allow
        return response
    return error_response(status, message)


def _journal_unavailable(
    _: Request[Any, Any, Any], exc: JournalUnavailable
) -> Response[ApiResponseError]:
    logger.error("refusing a change: %s", exc)
    response = error_response(
        503, "Service unavailable: changes cannot be made durable; retry later."
    )
    response.headers["retry-after"] = "5"
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ApiResponseError]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error.")  # API-9: generic, nothing leaked


exception_handlers = {
    ApiError: _api_error,
    JournalUnavailable: _journal_unavailable,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
