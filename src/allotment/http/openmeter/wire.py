"""What every OpenMeter route shares: JSON out, decoding in with the bad field named, the
Tanso rejections as problems, and the document's page-based pagination (OM-3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec
from litestar import MediaType, Response

from allotment.domain.replies import Rejected, RejectionKind
from allotment.http.openmeter.problems import Problem, bad_request

__all__ = (
    "ENCODER",
    "Page",
    "decode",
    "flag",
    "integer",
    "json",
    "order_and_page",
    "ordered",
    "problem_of",
    "rfc3339",
)

T = TypeVar("T")
ENCODER: Final = msgspec.json.Encoder(decimal_format="number")
_STATUS: Final = {RejectionKind.INVALID: 400, RejectionKind.NOT_FOUND: 404,
                  RejectionKind.CONFLICT: 409}  # fmt: skip
_AT: Final = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_FIELD: Final = re.compile(r"field `([^`]+)`")


def json(payload: Any, status: int = 200) -> Response[Any]:
    return Response(content=ENCODER.encode(payload), status_code=status, media_type=MediaType.JSON)


def problem_of(rejected: Rejected, field: str | None = None) -> Problem:
    """A shard's rejection as the problem the client sees (409 for a conflict, ...)."""
    if field is not None and rejected.kind is RejectionKind.INVALID:
        return bad_request(field, rejected.message)
    return Problem(_STATUS[rejected.kind], rejected.message)


def decode(body: bytes, type_: type[T], prefix: str = "") -> T:
    """`body` as `type_`, or a 400 naming the field at fault as a JSON path (`[3].id`)."""
    if not body.strip():
        raise bad_request(prefix or "body", "a JSON body is required")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as error:
        raise field_problem(str(error), prefix) from None
    except msgspec.DecodeError as error:
        raise bad_request(prefix or "body", f"malformed JSON: {error}") from None
    except RecursionError:
        raise bad_request(prefix or "body", "malformed JSON: nested too deeply") from None


def field_problem(message: str, prefix: str = "") -> Problem:
    """msgspec's "Expected `str`, got `int` - at `$[3].id`" as a 400 naming `[3].id`; a
    missing field is named itself ("Object missing required field `id` - at `$[3]`")."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches every string
    text, path = match["message"], match["path"] or ""
    missing = _FIELD.search(text) if "missing required field" in text else None
    if missing is not None:
        path = f"{path}.{missing[1]}" if path else missing[1]
    path = f"{prefix}{path}".lstrip(".") or "body"
    return bad_request(path, text[0].lower() + text[1:])


_RFC3339: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def rfc3339(field: str, value: str) -> datetime:
    """An RFC 3339 date-time with its offset, or a 400 naming `field`."""
    if _RFC3339.match(value):
        text = value.replace("z", "Z").replace("t", "T")
        head, dot, rest = text.partition(".")
        if dot:  # Python takes at most 6 fraction digits: keep microseconds
            digits = re.match(r"\d+", rest)
            assert digits is not None
            text = f"{head}.{digits[0][:6]}{rest[len(digits[0]) :]}"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise bad_request(field, f"{value!r} is not an RFC 3339 date-time with an offset")


class Page(msgspec.Struct, frozen=True):
    """The document's `...PaginatedResponse`: `totalCount`, `page`, `pageSize`, `items`."""

    totalCount: int
    page: int
    pageSize: int
    items: Sequence[Any]


def ordered(
    items: list[T], sort_keys: dict[str, Callable[[T], Any]], query: dict[str, str], default: str
) -> list[T]:
    """`items` sorted by `orderBy` (one of `sort_keys`, else `default`) and `order` (ASC,
    DESC), or a 400 naming the parameter."""
    order_by = query.get("orderBy", default)
    if order_by not in sort_keys:
        raise bad_request("orderBy", f"must be one of {', '.join(sort_keys)}")
    order = query.get("order", "ASC").upper()
    if order not in ("ASC", "DESC"):
        raise bad_request("order", "must be ASC or DESC")
    return sorted(items, key=sort_keys[order_by], reverse=order == "DESC")


def order_and_page(
    items: list[T],
    sort_keys: dict[str, Callable[[T], Any]],
    query: dict[str, str],
    default_order_by: str,
) -> tuple[list[T], int, int]:
    """`ordered`, then the page `page` (from 1) of `pageSize` (1..1000, default 100): the
    items, page and page size (OM-3)."""
    page = integer(query, "page", 1, 1, 1_000_000)
    size = integer(query, "pageSize", 100, 1, 1000)
    everything = ordered(items, sort_keys, query, default_order_by)
    return everything[(page - 1) * size : page * size], page, size


def integer(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad_request(name, f"must be an integer from {low} to {high}")
    return int(raw)


def flag(query: dict[str, str], name: str) -> bool:
    """A boolean query parameter (`true`/`false`, default false)."""
    raw = query.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise bad_request(name, "must be true or false")
    return raw == "true"
