"""OpenMeter's reads over shards (docs/scale-out.md SCL-60..SCL-62): the same events split
over three shards, each shard's own DuckDB answering, merged by `ShardedHistory`, give the
brute-force reference's rows for every aggregation (UNIQUE_COUNT with values repeated across
shards, AVG, LATEST with ties), windowed and grouped; event listings page through every
shard's events once, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from math import isclose
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.meter_queries import (
    EventQuery,
    MeterPart,
    MeterQuery,
    MeterRow,
    StoredCloudEvent,
    WindowSize,
)
from allotment.domain.meters import CloudEventRecorded, Meter, MeterAggregation
from allotment.persistence.analytics import to_arrow
from allotment.persistence.cloud_history import (
    cloud_events,
    run_meter_query,
    run_parts_query,
    stored_events,
)
from allotment.persistence.customer_events import latest_events
from allotment.persistence.history_rows import EVENT_COLUMNS, event_rows
from allotment.persistence.meter_sql import distinct_sql, events_sql
from allotment.persistence.ports import JournalRecord
from allotment.persistence.reports import CustomerEvent
from allotment.runtime.sharded_history import ShardedHistory
from tests.openmeter.meter_reference import BASE, meter, reference
from tests.persistence.test_meter_sql import NOW, as_dict, cloud_events_strategy

SHARDS = 3


class OneShard:
    """One shard's history: its events in its own DuckDB, its journal positions 1, 2, ..."""

    def __init__(self, events: list[CloudEventRecorded]) -> None:
        columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
        for position, event in enumerate(events, start=1):
            attributed = event.customer_id is not None
            event_rows(JournalRecord(
                position, event.customer_id, [event] if attributed else [],
                [] if attributed else [event],
            ), columns)  # fmt: skip
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self.tail = to_arrow(columns, "test")
        cloud_events(self.connection, [], 0, self.tail)

    async def customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        return latest_events(self.tail, [], 0, str(customer_id), limit)

    async def query_meter(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterRow]:
        return run_meter_query(self.connection, meter, query)

    async def meter_parts(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterPart]:
        return run_parts_query(self.connection, meter, query)

    async def list_events(self, environment: str, query: EventQuery) -> list[StoredCloudEvent]:
        sql, params = events_sql(query)
        return stored_events(self.connection.execute(sql, params).fetchall())

    async def distinct_values(
        self, environment: str, meter: Meter, dimension: str, start: datetime | None,
        end: datetime | None,
    ) -> list[str]:  # fmt: skip
        sql, params = distinct_sql(meter, dimension, start, end)
        return [row[0] for row in self.connection.execute(sql, params).fetchall()]


def ingested_in_order(events: list[CloudEventRecorded]) -> list[CloudEventRecorded]:
    """Each event accepted a microsecond after the one before: the order LATEST's tie-break
    by ingestion follows across shards (OM-46)."""
    return [
        CloudEventRecorded(**{**{f: getattr(e, f) for f in e.__struct_fields__},
                              "at": NOW + timedelta(microseconds=n)})
        for n, e in enumerate(events)
    ]  # fmt: skip


def split(events: list[CloudEventRecorded], placement: list[int]) -> ShardedHistory:
    shards: list[list[CloudEventRecorded]] = [[] for _ in range(SHARDS)]
    for event, k in zip(events, placement, strict=False):
        shards[k].append(event)
    return ShardedHistory([OneShard(part) for part in shards])


@pytest.mark.anyio
@settings(max_examples=25, deadline=None)
@given(
    events=cloud_events_strategy(),
    placement=st.lists(st.integers(0, SHARDS - 1), min_size=40, max_size=40),
    aggregation=st.sampled_from(list(MeterAggregation)),
    size=st.sampled_from([None, *WindowSize]),
    zone=st.sampled_from(["UTC", "America/New_York"]),
    group_by=st.sampled_from([(), ("subject",), ("model",), ("subject", "model")]),
    bounded=st.booleans(),
)
async def test_scl60_every_aggregation_merged_over_shards_matches_the_reference(
    events: list[CloudEventRecorded],
    placement: list[int],
    aggregation: MeterAggregation,
    size: WindowSize | None,
    zone: str,
    group_by: tuple[str, ...],
    bounded: bool,
) -> None:
    """SCL-60, SCL-61: per window and group, SUM/COUNT add, MIN/MAX take theirs, AVG is the
    sums over the counts, UNIQUE_COUNT counts the union of the values, LATEST the latest
    event's; rows in window then group order, as one shard answers."""
    events = ingested_in_order(events)
    start, end = (BASE + timedelta(days=1), BASE + timedelta(days=3)) if bounded else (None, None)
    query = MeterQuery(now=NOW, start=start, end=end, window_size=size, time_zone=zone,
                       group_by=group_by)  # fmt: skip
    the_meter = meter(aggregation)
    rows = await split(events, placement).query_meter("test", the_meter, query)
    one = run_meter_query(OneShard(events).connection, the_meter, query)
    assert [(r.window_start, r.window_end, r.subject, r.groups) for r in rows] == [
        (r.window_start, r.window_end, r.subject, r.groups) for r in one
    ]
    got, expected = as_dict(rows, query), reference(events, the_meter, query)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


@pytest.mark.anyio
@settings(max_examples=12, deadline=None)
@given(
    events=cloud_events_strategy(),
    placement=st.lists(st.integers(0, SHARDS - 1), min_size=40, max_size=40),
    limit=st.integers(1, 7),
)
async def test_scl62_listing_pages_every_shards_events_once_newest_first(
    events: list[CloudEventRecorded], placement: list[int], limit: int
) -> None:
    """SCL-62: paging with the v2 cursor (time, position, index) of the last event listed
    returns each event of every shard exactly once, newest `time` first."""
    history = split(events, placement)
    listed: list[StoredCloudEvent] = []
    after = None
    while True:
        page = await history.list_events("test", EventQuery(limit=limit, after=after))
        assert len(page) <= limit
        if not page:
            break
        listed.extend(page)
        last = page[-1]
        after = (last.time, last.journal_position, last.fact_index)
    assert sorted(e.id for e in listed) == sorted(e.event_id for e in events)
    assert [e.time for e in listed] == sorted((e.time for e in listed), reverse=True)
    distinct = await history.distinct_values("test", meter(MeterAggregation.SUM), "subject",
                                             None, None)  # fmt: skip
    assert distinct == sorted({e.subject for e in events if e.event_type == "call"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("aggregation", "values", "expected"),
    [
        (MeterAggregation.UNIQUE_COUNT, ["a", "a", "b", "a"], 2.0),  # "a" on shards 0, 1, 0
        (MeterAggregation.AVG, [1, 2, 3, 6], 3.0),  # not the shards' averages' average
        (MeterAggregation.LATEST, [5, 6, 7, 8], 8.0),  # one time: the last ingested, shard 0
        (MeterAggregation.SUM, [1, 2, 3, 6], 12.0),
        (MeterAggregation.MAX, [1, 9, 3, 6], 9.0),
    ],
)
async def test_scl61_what_cannot_be_merged_from_values_is_merged_from_parts(
    aggregation: MeterAggregation, values: list[object], expected: float
) -> None:
    """SCL-61: events placed on shards 0, 1, 2, 0, all at one time."""
    events = ingested_in_order([
        CloudEventRecorded(at=NOW, source="s", event_id=f"e{n}", event_type="call",
                           subject="alice", time=BASE, data={"v": value})
        for n, value in enumerate(values)
    ])  # fmt: skip
    [row] = await split(events, [0, 1, 2, 0]).query_meter(
        "test", meter(aggregation), MeterQuery(now=NOW)
    )
    assert row.value == expected
    assert (row.window_start, row.window_end) == (BASE, NOW)
