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

__all__ = (
    "DECIMAL_DIGITS_MAX",
    "check_decimal",
    "check_media_type",
    "decode_body",
    "json_media_type",
    "number_shapes",
    "parse_uuid",
)

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
DECIMAL_MAX = Decimal(10) ** 15  # beyond any real quantity or price; keeps arithmetic exact
# Free-form fields (meta, metadata) are journalled and later decoded again, inside records and
# analytics frames that add levels of their own; msgspec gives up near 1,000 levels in all.
DEPTH_MAX = 64
# OPS-K10: a decimal has at most this many digits before the point and after it. Beyond any
# real quantity or price, and it keeps `1E-999999999` (a grant that rounds to 0) and
# `1E+999999999` (which fails in arithmetic) out; only bodies with an exponent or a run of
# 19 digits can hold such a number, so the others skip the walk.
DECIMAL_DIGITS_MAX = 18
# What `re` would find with rb"\d[eE]|\d{19}" (a wide number) and rb"\d{19}" (a long integer,
# below), found with substring searches in the body with every ASCII digit folded to "0" and
# "E" to "e": `re` tries a pattern without a literal prefix at every offset, about 10 µs per
# pattern on a 200-byte event (measured: many times msgspec's decode of it).
_FOLD = bytes.maketrans(b"123456789E", b"000000000e")
_EXPONENT = b"0e"  # a digit, then e or E
_DIGIT_RUN = b"0" * 19  # 19 digits in a row


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
        exponent, long_digits = number_shapes(body)
        if exponent or long_digits:  # first: the untyped decodes below overflow on them
            _reject_wide_decimals(decoded, "")
        number_fields = _number_fields(cast("Hashable", type_))
        raw: Any = None
        if number_fields:
            raw = msgspec.json.decode(body)
            _reject_quoted_numbers(raw, number_fields, "")
        if body.count(b"{") + body.count(b"[") > DEPTH_MAX:  # else it cannot be that deep
            raw = msgspec.json.decode(body) if raw is None else raw
            _reject_deep_nesting(raw)
        if long_digits:
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


def number_shapes(body: bytes) -> tuple[bool, bool]:
    """Whether `body` holds a digit followed by e or E, and a run of 19 digits: where
    rb"\\d[eE]" and rb"\\d{19}" match."""
    folded = body.translate(_FOLD)
    return _EXPONENT in folded, _DIGIT_RUN in folded


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
# run of 19+ digits can hold one, so the others skip the walk (`_DIGIT_RUN`).
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


def _reject_wide_decimals(value: Any, path: str) -> None:
    """Raises ApiError(400) naming the first decimal with more than DECIMAL_DIGITS_MAX digits
    before or after the point (trailing zeros after it do not count)."""
    if isinstance(value, Decimal):
        if value.is_finite() and _too_wide(value):
            raise ApiError(
                400,
                f"Invalid field '{path or 'body'}': at most {DECIMAL_DIGITS_MAX} digits before "
                f"and {DECIMAL_DIGITS_MAX} after the decimal point.",
            )
    elif isinstance(value, msgspec.Struct):
        names = value.__struct_encode_fields__
        for attribute, name in zip(value.__struct_fields__, names, strict=True):
            _reject_wide_decimals(getattr(value, attribute), f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_wide_decimals(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_wide_decimals(item, f"{path}.{key}" if path else str(key))


def _too_wide(value: Decimal) -> bool:
    """Read from the digits themselves: no context arithmetic, so no rounding on the way."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if value.is_zero():
        return not -DECIMAL_DIGITS_MAX <= exponent <= DECIMAL_DIGITS_MAX
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    after_point = -(exponent + trailing_zeros)
    before_point = len(digits) + exponent
    return after_point > DECIMAL_DIGITS_MAX or before_point > DECIMAL_DIGITS_MAX


def json_media_type(content_type: bytes | None) -> bool:
    """Whether a Content-Type header names JSON: `application/json` or `application/*+json`,
    any parameters (charset) aside. O(length of the header)."""
    if content_type is None:
        return False
    if content_type == b"application/json":
        return True  # what clients send almost always: no parsing
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def check_media_type(body: bytes, content_type: bytes | None) -> None:
    """OPS-K9: a JSON route takes a body only as JSON. An empty body is judged by the route
    (usually "Request body is required.").

    Raises:
        ApiError: 415 naming the type that was sent.
    """
    if body.strip() and not json_media_type(content_type):
        sent = content_type.decode("latin-1") if content_type else "no Content-Type"
        raise ApiError(
            415,
            f"Unsupported media type: send the body as application/json (got {sent}).",
        )


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
