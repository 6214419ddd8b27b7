"""OpenMeter meters and CloudEvents as domain values and facts (issue 16, docs/openmeter.md).

A meter is part of an environment's catalog (`Catalog.meters`, keyed by id): it is defined and
deleted by environment facts (`MeterDefined`, `MeterDeleted`), journalled and replayed like
every catalog change, and carried by snapshots with the catalog.

A CloudEvent is journalled once, as `CloudEventRecorded`: in its customer's record when its
`subject` is one of that customer's subject keys (OM-8), otherwise as an environment fact of
its own, kept and listed but counted for no customer (OM-9). Its `data` is opaque to the
journal: meters read it through the JSONPath subset below when they count or query it.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

__all__ = (
    "CloudEvent",
    "CloudEventRecorded",
    "Meter",
    "MeterAggregation",
    "MeterDefined",
    "MeterDeleted",
    "extract",
    "jsonpath_error",
    "numeric_value",
    "parse_jsonpath",
    "ulid",
)


class MeterAggregation(enum.StrEnum):
    SUM = "SUM"
    COUNT = "COUNT"
    UNIQUE_COUNT = "UNIQUE_COUNT"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"
    LATEST = "LATEST"


class Meter(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """One meter as OpenMeter defines it (`Meter` in openmeter-openapi.yaml).

    `slug`, `aggregation`, `event_type`, `event_from` and `value_property` never change after
    creation (OM-13); `name`, `description`, `metadata` and `group_by` may. A deleted meter is
    kept with `deleted_at` set (OM-14), so its id still answers and its slug may be reused.
    """

    id: str  # a ULID, as OpenMeter's ids are (`ulid`)
    slug: str
    name: str
    aggregation: MeterAggregation
    event_type: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    metadata: dict[str, str] | None = None
    event_from: datetime | None = None
    value_property: str | None = None  # `$.a.b`; None only for COUNT (OM-11)
    group_by: dict[str, str] = msgspec.field(default_factory=dict)  # dimension -> `$.a.b`
    deleted_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class MeterDefined(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="meter_defined"):
    """At `at`, `meter` was created, or replaced the meter with its id (an update). An
    environment fact."""

    at: datetime
    meter: Meter


class MeterDeleted(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="meter_deleted"):
    """At `at`, the meter with `meter_id` was deleted (soft: it keeps its definition). An
    environment fact."""

    at: datetime
    meter_id: str


class CloudEvent(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A CloudEvent as `POST /api/v1/events` received and validated it (OM-1..OM-5), before
    the shard stamps, attributes and journals it as `CloudEventRecorded`."""

    source: str
    event_id: str
    event_type: str
    subject: str
    time: datetime | None = None
    specversion: str = "1.0"
    data: dict[str, Any] | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None


class CloudEventRecorded(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="cloud_event_recorded"
):
    """One CloudEvent accepted by `POST /api/v1/events` (OM-1..OM-9).

    In a customer's record when the event was attributed to that customer (`customer_id`
    set), else an environment fact (`customer_id` None). `at` is when it was ingested (its
    `ingestedAt` and `storedAt`: the record is durable before the reply). `(source, event_id)`
    is its identity: a second event with the pair is never journalled (OM-6).

    Names differ from the wire where the wire's would collide (`type` is every fact's tag):
    `event_id` is the CloudEvent `id`, `event_type` its `type`.
    """

    at: datetime
    source: str
    event_id: str
    event_type: str
    subject: str
    time: datetime  # the event's `time`, or the ingest time when it had none (OM-4)
    specversion: str = "1.0"
    data: dict[str, Any] | None = None  # the JSON object as received; opaque to the journal
    datacontenttype: str | None = None
    dataschema: str | None = None
    customer_id: uuid.UUID | None = None
    # Why the event counts toward nothing, as `IngestedEvent.validationError` lists it: no
    # customer claims its subject, or no meter matches its type. None when neither.
    validation_error: str | None = None


# OM-10: the JSONPath subset the document's examples use: `$.a`, `$.a.b`, ... where every
# segment is a plain name. Brackets, wildcards, filters and recursion are refused at creation.
_SEGMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def parse_jsonpath(path: str) -> tuple[str, ...] | None:
    """The names of `$.a.b` as ("a", "b"); None when `path` is outside the subset (OM-10)."""
    if not path.startswith("$."):
        return None
    segments = tuple(path[2:].split("."))
    if all(_SEGMENT.fullmatch(s) for s in segments):
        return segments
    return None


def jsonpath_error(path: str) -> str | None:
    """Why `path` is not accepted, or None."""
    if parse_jsonpath(path) is not None:
        return None
    return f"{path!r} is not a JSONPath of the supported form $.name or $.name.name (OM-10)"


def extract(data: dict[str, Any] | None, path: str) -> Any:
    """The value at `path` in `data`, or None when any step is missing or not an object."""
    segments = parse_jsonpath(path)
    if segments is None:
        return None
    value: Any = data
    for name in segments:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def numeric_value(value: Any) -> Decimal | None:
    """A number or a numeric string as a finite Decimal (OM-12); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(at: datetime, entropy: uuid.UUID) -> str:
    """A ULID (26 Crockford base32 characters) for an entity created at `at`: 48 bits of
    milliseconds, then 80 bits of `entropy` (the turn's new id), so ids sort by creation."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    number = (millis << 80) | (entropy.int & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[number & 31])
        number >>= 5
    return "".join(reversed(chars))
