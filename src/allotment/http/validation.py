"""Decoding at the edge: strict msgspec decoding of the raw body (exact decimals, no float
step), messages that name the field (API-10), and the numeric limits msgspec cannot express."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Hashable, Iterator
from decimal import Decimal
from typing import Any, TypeVar, cast

import msgspec

from allotment.http.errors import ApiError

__all__ = ("check_decimal", "decode_body", "parse_uuid")

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
DECIMAL_MAX = Decimal(10) ** 15  # beyond any real quantity or price; keeps arithmetic exact
# Free-form fields (meta, metadata) are journalled and later decoded again, inside records and
# analytics frames that add levels of their own; msgspec gives up near 1,000 levels in all.
DEPTH_MAX = 64


def _field_message(error: msgspec.ValidationError) -> str:
    text = str(error)
    match = _AT.search(text)
    if match is None:
        return f"Invalid request body: {text}"
    path = match.group("path") or "body"
    return f"Invalid field '{path}': {text[: match.start()]}"


def decode_body(body: bytes, type_: type[T]) -> T:
    """Decode a JSON body into `type_`, or raise ApiError(400) naming the offending field."""
    if not body.strip():
        raise ApiError(400, "Request body is required.")
    try:
        decoded = msgspec.json.decode(body, type=type_)
        number_fields = _number_fields(cast("Hashable", type_))
        raw: Any = None
        if number_fields:
            raw = msgspec.json.decode(body)
            _reject_quoted_numbers(raw, number_fields, "")
        if body.count(b"{") + body.count(b"[") > DEPTH_MAX:  # else it cannot be that deep
            raw = msgspec.json.decode(body) if raw is None else raw
            _reject_deep_nesting(raw)
        if _LONG_DIGITS.search(body):
            raw = msgspec.json.decode(body) if raw is None else raw
            _reject_huge_integers(raw, _exact_fields(cast("Hashable", type_)), "")
        return decoded
    except msgspec.ValidationError as error:
        raise ApiError(400, _field_message(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"Malformed JSON: {error}") from None
    except RecursionError:  # msgspec raises this, not DecodeError, past ~1000 levels
        raise ApiError(400, "Malformed JSON: nested too deeply.") from None
    except UnicodeDecodeError:  # ... and this for invalid UTF-8 inside a string
        raise ApiError(400, "Malformed JSON: invalid UTF-8.") from None


def _reject_deep_nesting(raw: Any) -> None:
    """Raises ApiError(400) naming the first value nested deeper than DEPTH_MAX levels."""
    stack: list[tuple[Any, str, int]] = [(raw, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        children: Iterator[tuple[str, Any]]
        if isinstance(value, dict):
            children = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            children = ((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            continue
        if depth > DEPTH_MAX:
            raise ApiError(400, f"Invalid field '{path}': nested deeper than {DEPTH_MAX} levels.")
        stack.extend((child, where, depth + 1) for where, child in children)


NumberFields = dict[str, "NumberFields | None"]

# Everything accepted is journalled as msgpack, whose integers have 64 bits: a larger integer
# (say inside `meta`) would be accepted here and then fail to be recorded. Only bodies with a
# run of 19+ digits can hold one, so the others skip the walk.
_LONG_DIGITS = re.compile(rb"\d{19}")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def _reject_huge_integers(raw: Any, skipped: NumberFields | None, path: str) -> None:
    """Reject an integer beyond 64 bits, except in `skipped` fields: decimals (their own
    bounds say more) and raw fields (judged when decoded)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and not _INT_MIN <= raw <= _INT_MAX:
        raise ApiError(400, f"Invalid field '{path or 'body'}': integers must fit in 64 bits.")
    if isinstance(raw, dict):
        for key, value in raw.items():
            inner: NumberFields | None = None
            if skipped is not None and key in skipped:
                inner = skipped[key]
                if inner is None:
                    continue
            _reject_huge_integers(value, inner, f"{path}.{key}" if path else str(key))
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            _reject_huge_integers(value, skipped, f"{path}[{index}]")


@functools.cache
def _exact_fields(type_: Any) -> NumberFields:
    """The decimal fields (as `_number_fields`) and the raw ones, of a struct and its nested
    structs."""
    fields: NumberFields = dict(_number_fields(type_))
    for name, kind in _field_kinds(type_):
        item = kind.item_type if isinstance(kind, msgspec.inspect.ListType) else kind
        if isinstance(item, msgspec.inspect.RawType):
            fields[name] = None
    return fields


def _field_kinds(type_: Any) -> Iterator[tuple[str, msgspec.inspect.Type]]:
    """(wire name, type) of each field of a struct, one pair per member of a union."""
    info = msgspec.inspect.type_info(type_)
    if isinstance(info, msgspec.inspect.StructType):
        for field in info.fields:
            union = isinstance(field.type, msgspec.inspect.UnionType)
            for kind in field.type.types if union else (field.type,):  # type: ignore[attr-defined]
                yield field.encode_name, kind


@functools.cache
def _number_fields(type_: Any) -> NumberFields:
    """The decimal fields of a request struct (and of its nested structs): on the wire they are
    JSON numbers (API-8), but msgspec would also take a quoted number for a `Decimal`."""
    fields: NumberFields = {}
    for name, kind in _field_kinds(type_):
        if isinstance(kind, msgspec.inspect.DecimalType):
            fields[name] = None
        elif isinstance(kind, msgspec.inspect.StructType):
            nested = _number_fields(kind.cls)
            if nested:
                fields[name] = nested
    return fields


def _reject_quoted_numbers(raw: Any, fields: NumberFields, prefix: str) -> None:
    if not isinstance(raw, dict):
        return
    for name, nested in fields.items():
        value = raw.get(name)
        if nested is None and isinstance(value, str):
            raise ApiError(400, f"Invalid field '{prefix}{name}': Expected `number`, got `str`")
        if nested is not None:
            _reject_quoted_numbers(value, nested, f"{prefix}{name}.")


def check_decimal(
    name: str, value: Decimal, *, positive: bool = False, maximum: Decimal = DECIMAL_MAX
) -> Decimal:
    """A finite decimal in [0, maximum], strictly positive when `positive`."""
    if not value.is_finite() or value < 0 or (positive and value == 0) or value > maximum:
        bound = "> 0" if positive else ">= 0"
        raise ApiError(400, f"Invalid field '{name}': must be a number {bound} and <= {maximum:E}")
    return value


def parse_uuid(name: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(400, f"Invalid field '{name}': must be a UUID.") from None
