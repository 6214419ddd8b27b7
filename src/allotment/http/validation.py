"""Decoding at the edge: strict msgspec decoding of the raw body (exact decimals, no float
step), messages that name the field (API-10), and the numeric limits msgspec cannot express."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Hashable
from decimal import Decimal
from typing import Any, TypeVar, cast

import msgspec

from allotment.http.errors import ApiError

__all__ = ("check_decimal", "decode_body", "parse_uuid")

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
DECIMAL_MAX = Decimal(10) ** 15  # beyond any real quantity or price; keeps arithmetic exact


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
        if number_fields:
            _reject_quoted_numbers(msgspec.json.decode(body), number_fields, "")
        return decoded
    except msgspec.ValidationError as error:
        raise ApiError(400, _field_message(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"Malformed JSON: {error}") from None
    except RecursionError:  # msgspec raises this, not DecodeError, past ~1000 levels
        raise ApiError(400, "Malformed JSON: nested too deeply.") from None
    except UnicodeDecodeError:  # ... and this for invalid UTF-8 inside a string
        raise ApiError(400, "Malformed JSON: invalid UTF-8.") from None


NumberFields = dict[str, "NumberFields | None"]


@functools.cache
def _number_fields(type_: Any) -> NumberFields:
    """The decimal fields of a request struct (and of its nested structs): on the wire they are
    JSON numbers (API-8), but msgspec would also take a quoted number for a `Decimal`."""
    fields: NumberFields = {}
    info = msgspec.inspect.type_info(type_)
    if not isinstance(info, msgspec.inspect.StructType):
        return fields
    for field in info.fields:
        kinds = (
            field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        )
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.DecimalType):
                fields[field.encode_name] = None
            elif isinstance(kind, msgspec.inspect.StructType):
                nested = _number_fields(kind.cls)
                if nested:
                    fields[field.encode_name] = nested
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
