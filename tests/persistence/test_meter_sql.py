"""The meter query engine (persistence/meter_sql.py over DuckDB) against a brute-force
reference computed here in Python (OM-42..OM-47): every aggregation, with Hypothesis-generated
events in any order, with groups, ties and repeated values, windows in UTC and in
America/New_York across its DST changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from math import isclose
from typing import Any

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.meter_queries import Filter, MeterQuery, MeterRow, WindowSize
from allotment.domain.meters import CloudEventRecorded, Meter, MeterAggregation
from allotment.persistence.analytics import to_arrow
from allotment.persistence.cloud_history import cloud_events, run_meter_query
from allotment.persistence.history_rows import EVENT_COLUMNS, event_rows
from allotment.persistence.ports import JournalRecord
from tests.openmeter.meter_reference import BASE, meter, reference

NOW = BASE + timedelta(days=40)
CUSTOMER = uuid.UUID(int=7)


def run(events: list[CloudEventRecorded], the_meter: Meter, query: MeterQuery) -> list[MeterRow]:
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
    for position, event in enumerate(events, start=1):  # one record per event, in ingest order
        attributed = event.customer_id is not None
        event_rows(JournalRecord(
            position, event.customer_id, [event] if attributed else [], [] if attributed else [event]
        ), columns)  # fmt: skip
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    cloud_events(connection, [], 0, to_arrow(columns, "test"))
    return run_meter_query(connection, the_meter, query)


# -- the events ----------------------------------------------------------------------------

values = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-1000, 1000).map(str),  # numeric strings count (OM-44)
    st.sampled_from(["a", "b", "c", "x1", "not a number", " 12 "]),
    st.just(True),
    st.none(),
)


@st.composite
def cloud_events_strategy(draw: st.DrawFn) -> list[CloudEventRecorded]:
    count = draw(st.integers(0, 40))
    events = []
    for n in range(count):
        # minutes over 5 days around the DST change, in any order; repeats make ties
        at = BASE + timedelta(hours=draw(st.integers(0, 30)) * 4,
                              minutes=draw(st.sampled_from([0, 7, 30])))  # fmt: skip
        data: dict[str, Any] = {}
        value = draw(values)
        if value is not None:
            data["v"] = value
        if draw(st.booleans()):
            data["model"] = draw(st.sampled_from(["gpt", "claude"]))
        events.append(CloudEventRecorded(
            at=NOW, source="s", event_id=f"e{n}", subject=draw(st.sampled_from(["alice", "bob"])),
            event_type=draw(st.sampled_from(["call", "call", "other"])), time=at, data=data,
            customer_id=draw(st.sampled_from([CUSTOMER, None])),
        ))  # fmt: skip
    return events


def as_dict(rows: list[MeterRow], query: MeterQuery) -> dict[Any, float]:
    result = {}
    for row in rows:
        named = {"subject": row.subject, **row.groups}
        span = None if query.window_size is None else (row.window_start, row.window_end)
        result[(span, tuple(named[name] for name in query.group_by))] = row.value
    return result


@settings(max_examples=150, deadline=None)
@given(
    events=cloud_events_strategy(),
    aggregation=st.sampled_from(list(MeterAggregation)),
    size=st.sampled_from([None, *WindowSize]),
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
    group_by=st.sampled_from([(), ("subject",), ("model",), ("subject", "model")]),
    bounded=st.booleans(),
)
def test_every_aggregation_matches_the_reference(
    events: list[CloudEventRecorded],
    aggregation: MeterAggregation,
    size: WindowSize | None,
    zone: str,
    group_by: tuple[str, ...],
    bounded: bool,
) -> None:
    """OM-42..OM-47: the engine's rows are the reference's, value for value."""
    start, end = (BASE + timedelta(days=1), BASE + timedelta(days=3)) if bounded else (None, None)
    query = MeterQuery(now=NOW, start=start, end=end, window_size=size, time_zone=zone,
                       group_by=group_by)  # fmt: skip
    the_meter = meter(aggregation)
    got = as_dict(run(events, the_meter, query), query)
    expected = reference(events, the_meter, query)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


def test_a_new_york_day_across_the_dst_change_lasts_23_hours() -> None:
    """OM-43: DAY windows are local calendar days; 8 March 2026 in New York is 23 hours."""
    events = [
        CloudEventRecorded(at=NOW, source="s", event_id=str(n), event_type="call", subject="a",
                           time=BASE + timedelta(days=2, hours=h), data={"v": 1})
        for n, h in enumerate([4, 6, 27, 28])
    ]  # fmt: skip
    query = MeterQuery(now=NOW, window_size=WindowSize.DAY, time_zone="America/New_York")
    rows = run(events, meter(MeterAggregation.SUM), query)
    spans = [(r.window_start, r.window_end, r.value) for r in rows]
    assert spans == [
        (datetime(2026, 3, 7, 5, tzinfo=UTC), datetime(2026, 3, 8, 5, tzinfo=UTC), 1.0),
        (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC), 2.0),
        (datetime(2026, 3, 9, 4, tzinfo=UTC), datetime(2026, 3, 10, 4, tzinfo=UTC), 1.0),
    ]


def test_group_filters_select_events_by_their_dimension() -> None:
    """OM-47: filterGroupBy / advancedMeterGroupByFilters keep the matching events only."""
    events = [
        CloudEventRecorded(at=NOW, source="s", event_id=str(n), event_type="call", subject="a",
                           time=BASE, data={"v": n, "model": model})
        for n, model in enumerate(["gpt", "claude", "gpt", "llama"])
    ]  # fmt: skip
    kept = Filter("in", ["gpt", "llama"])
    query = MeterQuery(now=NOW, group_filters={"model": kept})
    [row] = run(events, meter(MeterAggregation.SUM), query)
    assert row.value == 0 + 2 + 3
    assert row.window_start == BASE and row.window_end == NOW
    assert Decimal(str(row.value)) == Decimal(5)


def test_latest_breaks_a_tie_in_time_by_the_last_ingested() -> None:
    """OM-46: among events with the latest time, the one journalled last gives LATEST."""
    events = [
        CloudEventRecorded(at=NOW, source="s", event_id=str(n), event_type="call", subject="a",
                           time=BASE + timedelta(hours=1 if n else 0), data={"v": n})
        for n in (0, 3, 1, 2)
    ]  # fmt: skip
    query = MeterQuery(now=NOW)
    [row] = run(events, meter(MeterAggregation.LATEST), query)
    assert row.value == 2.0 == reference(events, meter(MeterAggregation.LATEST), query)[(None, ())]
