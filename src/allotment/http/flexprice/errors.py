"""Errors on the Flexprice paths (`/v1`): Flexprice's `errors.ErrorResponse`, `{code, message,
details, http_status_code}`, which its official client parses (CN-41). A refusal about one
field names it in `details.field` and at the start of `message`. The Tanso envelope
(`http/errors.py`) is never seen on these paths.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec

from allotment.domain.replies import Rejected, RejectionKind
from allotment.http.errors import ApiError, plain_failure
from allotment.runtime.errors import Overloaded, ShardUnavailable

__all__ = (
    "FLEX_ERRORS",
    "FlexError",
    "exception_handlers",
    "from_rejection",
    "invalid",
    "not_found",
)

logger = logging.getLogger("allotment.http.flexprice")

# Flexprice's `code` for each status allotment answers (research/flexprice.md, "Errors").
_CODES: Final = {
    400: "validation_error",
    401: "permission_denied",
    403: "permission_denied",
    404: "not_found",
    405: "http_client_error",
    409: "already_exists",
    413: "http_client_error",
    415: "http_client_error",
    429: "too_many_requests",
    503: "service_unavailable",
}
_REJECTION_STATUS: Final = {
    RejectionKind.INVALID: 400,
    RejectionKind.NOT_FOUND: 404,
    RejectionKind.CONFLICT: 409,
}


class ErrorDocument(msgspec.Struct, frozen=True, omit_defaults=True):
    """Flexprice's `errors.ErrorResponse`."""

    code: str
    message: str
    http_status_code: int
    details: dict[str, str] | None = None


class FlexError(Exception):
    """A request refused on a Flexprice path, with what the client is told."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


def invalid(field: str, message: str) -> FlexError:
    """A 400 `validation_error` about one field: the message reads "<field>: <message>"."""
    return FlexError(400, f"{field}: {message}", field)


def not_found(what: str, key: str) -> FlexError:
    return FlexError(404, f"{what} {key!r} not found", "id")


def from_rejection(rejected: Rejected) -> FlexError:
    """A domain refusal (nothing changed) as Flexprice's error; the domain's messages already
    start with the wire name of the field at fault (docs/credit-notes.md, "Interface")."""
    return FlexError(_REJECTION_STATUS[rejected.kind], rejected.message, rejected.field)


_DESCRIPTIONS: Final = {
    400: "`validation_error`: `details.field` names the field at fault; nothing changed.",
    401: "`permission_denied`: invalid or missing API key.",
    403: "`permission_denied`: the key lacks the `admin` scope.",
    404: "`not_found`: no such invoice or credit note in the key's environment.",
    409: "`already_exists`: the idempotency key or credit-note number is taken.",
    503: "`service_unavailable`: nothing changed; retry later.",
}

FLEX_ERRORS: Final = {
    code: ResponseSpec(data_container=ErrorDocument, description=text, generate_examples=False)
    for code, text in _DESCRIPTIONS.items()
}

_ENCODER: Final = msgspec.json.Encoder()


def _as_flex(exc: Exception, where: str) -> FlexError:
    if isinstance(exc, FlexError):
        return exc
    failure = plain_failure(exc, where, logger)
    detail = failure.detail if failure.detail is not None else "internal error"
    return FlexError(failure.status, detail, headers=failure.headers)


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    error = _as_flex(exc, f"{request.method} {request.url.path}")
    body = ErrorDocument(
        code=_CODES.get(
            error.status, "internal_error" if error.status >= 500 else "http_client_error"
        ),
        message=error.message,
        http_status_code=error.status,
        details={"field": error.field} if error.field else None,
    )
    return Response(
        content=_ENCODER.encode(body),
        status_code=error.status,
        media_type=MediaType.JSON,
        headers=error.headers,
    )


exception_handlers: Final = {
    FlexError: _handle,
    ApiError: _handle,
    ShardUnavailable: _handle,
    Overloaded: _handle,
    HTTPException: _handle,
    Exception: _handle,
}
"""For the Flexprice router: every failure on its paths leaves in Flexprice's shape."""
