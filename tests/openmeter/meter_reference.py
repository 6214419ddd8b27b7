"""The brute-force reference of OpenMeter meter queries (OM-42..OM-46), computed in plain
Python from the events themselves, which the tests hold the DuckDB engine and the server to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from allotment.domain.meter_queries import MeterQuery, WindowSize
from allotment.domain.meters import CloudEventRecorded, Meter, MeterAggregation, numeric_value

__all__ = ("BASE", "meter", "reference", "window")

BASE = datetime(2026, 3, 6, tzinfo=UTC)  # New York springs forward on 8 March 2026


def meter(aggregation: MeterAggregation) -> Meter:
    return Meter(
        id="01J0000000000000000000000M", slug="m", name="m", aggregation=aggregation,
        event_type="call", created_at=BASE, updated_at=BASE,
        value_property=None if aggregation is MeterAggregation.COUNT else "$.v",
        group_by={"model": "$.model"},
    )  # fmt: skip


def window(at: datetime, size: WindowSize | None, zone: str) -> tuple[datetime, datetime] | None:
    if size is None:
        return None
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    wall = local.replace(tzinfo=None)
    if size in (WindowSize.MINUTE, WindowSize.HOUR):
        cut = wall.replace(second=0, microsecond=0)
        cut = cut.replace(minute=0) if size is WindowSize.HOUR else cut
        start = at - (wall - cut)
        return start, start + (
            timedelta(hours=1) if size is WindowSize.HOUR else timedelta(minutes=1)
        )
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if size is WindowSize.DAY:
        following = day + timedelta(days=1)
    else:
        day = day.replace(day=1)
        following = (day + timedelta(days=32)).replace(day=1)
    return day.replace(tzinfo=tz).astimezone(UTC), following.replace(tzinfo=tz).astimezone(UTC)


def value_of(event: CloudEventRecorded, aggregation: MeterAggregation) -> Any:
    raw = (event.data or {}).get("v")
    if aggregation is MeterAggregation.UNIQUE_COUNT:
        return raw if isinstance(raw, str) else None
    number = numeric_value(raw)
    return None if number is None else float(number)


def reference(
    events: list[CloudEventRecorded], the_meter: Meter, query: MeterQuery
) -> dict[Any, float]:
    aggregation = the_meter.aggregation
    groups: dict[Any, list[tuple[CloudEventRecorded, int, Any]]] = defaultdict(list)
    for order, event in enumerate(events):
        if event.event_type != the_meter.event_type:
            continue
        if query.start is not None and event.time < query.start:
            continue
        if query.end is not None and event.time >= query.end:
            continue
        value = value_of(event, aggregation)
        if aggregation is not MeterAggregation.COUNT and value is None:
            continue
        model = (event.data or {}).get("model")
        named = {"subject": event.subject, "model": model if isinstance(model, str) else None}
        key = (window(event.time, query.window_size, query.time_zone),
               tuple(named[name] for name in query.group_by))  # fmt: skip
        groups[key].append((event, order, value))
    return {key: aggregate(aggregation, members) for key, members in groups.items()}


def aggregate(
    aggregation: MeterAggregation, members: list[tuple[CloudEventRecorded, int, Any]]
) -> float:
    values = [v for _, _, v in members]
    pick: dict[MeterAggregation, Callable[[], float]] = {
        MeterAggregation.SUM: lambda: sum(values),
        MeterAggregation.COUNT: lambda: float(len(values)),
        MeterAggregation.UNIQUE_COUNT: lambda: float(len(set(values))),
        MeterAggregation.AVG: lambda: sum(values) / len(values),
        MeterAggregation.MIN: lambda: min(values),
        MeterAggregation.MAX: lambda: max(values),
        # the latest time; among equal times, the one ingested last
        MeterAggregation.LATEST: lambda: max(members, key=lambda m: (m[0].time, m[1]))[2],
    }
    return pick[aggregation]()
