"""Errors on the OpenMeter paths: RFC 7807 `application/problem+json`, as the document's
`UnexpectedProblemResponse` and `ValidationErrorProblemResponse` shape them (OM-2).

Every OpenMeter route raises `Problem` (or lets a runtime error escape) and the OpenMeter
router's `exception_handlers` answer it here; the Tanso envelope (`http/errors.py`) is never
seen on these paths. A problem about one field names it twice, in `detail` for people and in
`extensions.validationErrors[].field` (a JSON path into the request: `[3].id`, `slug`,
`query.windowSize`) for programs.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec

from allotment.http.errors import ApiError, plain_failure
from allotment.runtime.errors import Overloaded, ShardUnavailable

__all__ = (
    "PROBLEMS",
    "PROBLEM_JSON",
    "FieldError",
    "Problem",
    "ProblemDocument",
    "as_problem",
    "bad_request",
    "exception_handlers",
    "not_found",
    "problem_body",
    "problem_response",
    "problem_responses",
)

logger = logging.getLogger("allotment.http.openmeter")

PROBLEM_JSON: Final = "application/problem+json"

_TITLES: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class FieldError(msgspec.Struct, frozen=True):
    """One entry of `extensions.validationErrors` (the document's `ValidationError`)."""

    field: str
    message: str
    code: str = "validation_error"


class _Extensions(msgspec.Struct, frozen=True, omit_defaults=True):
    validationErrors: list[FieldError] = msgspec.field(default_factory=list)


class ProblemDocument(msgspec.Struct, frozen=True, omit_defaults=True):
    """The document's `UnexpectedProblemResponse` with a `validationErrors` extension."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    extensions: _Extensions | None = None


class Problem(Exception):
    """A request refused on an OpenMeter path, with what the client is told."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: tuple[FieldError, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


_DESCRIPTIONS: Final = {
    400: "Bad request: `extensions.validationErrors[].field` names the field at fault.",
    401: "Invalid or missing API key.",
    403: "The API key lacks the scope the operation needs.",
    404: "No such resource.",
    409: "A conflict the detail names (a slug, key or subject key taken).",
    415: "The body is not of a content type the operation takes.",
    503: "Unavailable for now; nothing changed. Retry later.",
}


def problem_responses() -> dict[int, ResponseSpec]:
    """OpenAPI entries for the OpenMeter router's errors, all problem+json (OM-2)."""
    return {
        code: ResponseSpec(
            data_container=ProblemDocument,
            description=description,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for code, description in _DESCRIPTIONS.items()
    }


PROBLEMS: Final = problem_responses()


def bad_request(field: str, message: str) -> Problem:
    """A 400 about one field: `detail` reads "<field>: <message>" (OM-2)."""
    return Problem(400, f"{field}: {message}", (FieldError(field, message),))


def not_found(what: str, key: str) -> Problem:
    return Problem(404, f"{what} {key!r} not found")


_ENCODER: Final = msgspec.json.Encoder()


def problem_body(problem: Problem, instance: str) -> bytes:
    """The problem's document, encoded; `instance` is the request's path (a URI reference).
    The fast path sends these bytes too, so both paths answer alike."""
    extensions = _Extensions(list(problem.errors)) if problem.errors else None
    body = ProblemDocument(
        type="about:blank",
        title=_TITLES.get(problem.status, "Error"),
        status=problem.status,
        detail=problem.detail,
        instance=instance,
        extensions=extensions,
    )
    return _ENCODER.encode(body)


def problem_response(problem: Problem, instance: str) -> Response[Any]:
    """The problem as its response."""
    return Response(
        content=problem_body(problem, instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def as_problem(exc: Exception, where: str) -> Problem:
    """Any failure on an OpenMeter path as the problem its client is told (`where` names the
    request in the log of an unexpected error)."""
    if isinstance(exc, Problem):
        return exc
    failure = plain_failure(exc, where, logger)
    if failure.unexpected:
        return Problem(500, "internal server error")  # nothing about the failure leaks
    detail = failure.detail if failure.detail is not None else _TITLES.get(failure.status, "Error")
    return Problem(failure.status, detail, headers=failure.headers)


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    path = request.url.path
    return problem_response(as_problem(exc, f"{request.method} {path}"), path)


exception_handlers: Final = {
    Problem: _handle,
    ApiError: _handle,
    ShardUnavailable: _handle,
    Overloaded: _handle,
    HTTPException: _handle,
    Exception: _handle,
}
"""For the OpenMeter router: every failure on its paths leaves as problem+json."""
