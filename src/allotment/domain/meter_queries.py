"""The questions OpenMeter's reads ask of the CloudEvent history, and the rows they get back
(issue 16, docs/openmeter.md "Queries and listing"): plain values, no I/O. The HTTP layer
builds them from the wire; `runtime/meter_reads.py` is the port that answers them.

Filters arrive parsed (`Filter` trees), time zones as IANA names the HTTP layer has already
checked, instants as aware datetimes.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec

__all__ = (
    "EventQuery",
    "Filter",
    "MeterPart",
    "MeterQuery",
    "MeterRow",
    "StoredCloudEvent",
    "WindowSize",
)


class WindowSize(enum.StrEnum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"
    MONTH = "MONTH"


class Filter(msgspec.Struct, frozen=True):
    """One node of a parsed OpenMeter filter (`FilterString`, `FilterTime`, `FilterIDExact`):
    `op` is the operator without its `$` ("eq", "in", "like", "and", ...); `value` is a
    string, a datetime, a list of them (`in`, `nin`), or a list of `Filter` (`and`, `or`)."""

    op: str
    value: Any


class MeterQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`queryMeter` / `queryMeterPost` after validation (OM-41..OM-47). `start` and `end` are
    the half-open range [start, end); `now` is the instant of the query, the end when none was
    given. `group_by` holds meter dimensions and the reserved `subject` and `customer_id`."""

    now: datetime
    start: datetime | None = None
    end: datetime | None = None
    window_size: WindowSize | None = None
    time_zone: str = "UTC"
    subjects: tuple[str, ...] = ()
    customer_ids: tuple[str, ...] = ()  # allotment customer ids (UUID text)
    group_by: tuple[str, ...] = ()
    group_filters: dict[str, Filter] = msgspec.field(default_factory=dict)


class MeterRow(msgspec.Struct, frozen=True, kw_only=True):
    """One `MeterQueryRow`: `groups` has a value (or None) for every dimension grouped by."""

    value: float
    window_start: datetime
    window_end: datetime
    subject: str | None = None
    customer_id: str | None = None
    groups: dict[str, str | None] = msgspec.field(default_factory=dict)


class MeterPart(msgspec.Struct, frozen=True, kw_only=True):
    """One shard's row of a meter query with what merging it with the other shards' needs
    (docs/scale-out.md SCL-60): `row.value` is AVG's sum, UNIQUE_COUNT's count and LATEST's
    value; `part` is AVG's count of events with a value, UNIQUE_COUNT's distinct values, or
    LATEST's [time, ingestion time] (epoch microseconds) of the event holding its value."""

    row: MeterRow
    part: int | list[str] | list[int]


class EventQuery(msgspec.Struct, frozen=True, kw_only=True):
    """`listEvents` (v1) and `listEventsV2` as one question: every filter must hold. The v1
    partial matches arrive as `like` filters. `after` is a v2 cursor: the (time, journal
    position, fact index) of the last event already listed."""

    limit: int = 100
    id: Filter | None = None
    source: Filter | None = None
    subject: Filter | None = None
    type: Filter | None = None
    customer_ids: tuple[str, ...] | None = None
    time: Filter | None = None
    ingested_at: Filter | None = None
    after: tuple[datetime, int, int] | None = None


class StoredCloudEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One `IngestedEvent`, with where it is in the journal (for the v2 cursor)."""

    source: str
    id: str
    type: str
    subject: str
    time: datetime
    ingested_at: datetime
    journal_position: int
    fact_index: int
    specversion: str = "1.0"
    data: dict[str, Any] | None = None
    customer_id: str | None = None
    validation_error: str | None = None
