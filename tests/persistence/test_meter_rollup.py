"""Meter queries with a meter's rollup present and absent give the same rows (OM-54..OM-57):
the rollup built from the history up to a random position, the rest read raw, every
aggregation, windows in UTC, New York (DST) and Kolkata (+5:30), filters and `eventFrom`; and
the rollup's upkeep: exactly once across a crash, rebuilt for a changed definition, removed
with its meter."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from math import isclose
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain.meter_queries import Filter, MeterQuery, MeterRow, WindowSize
from allotment.domain.meters import CloudEventRecorded, Meter, MeterAggregation
from allotment.persistence import meter_rollup_build
from allotment.persistence.analytics import to_arrow
from allotment.persistence.cloud_history import cloud_events, run_meter_query
from allotment.persistence.history_cursor import range_file, table_dir
from allotment.persistence.history_rows import EVENT_COLUMNS, event_rows
from allotment.persistence.meter_rollup import Rollup, levels, rollup_dir, run_rollup_query
from allotment.persistence.meter_rollup_build import update_rollup, update_rollups
from allotment.persistence.meter_rollup_sql import LEVELS, Level
from allotment.persistence.ports import JournalRecord
from tests.openmeter.meter_reference import BASE, meter, reference
from tests.persistence.test_meter_sql import NOW, as_dict, cloud_events_strategy

CUSTOMER = uuid.UUID(int=7)
QUARTER, MINUTE = LEVELS


def write_history(data_dir: Path, events: list[CloudEventRecorded]) -> list[Path]:
    """The events as the `events` history (one record each), in one file per 10 records."""
    directory = table_dir(data_dir, "events")
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for first in range(1, len(events) + 1, 10):
        columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
        last = min(first + 9, len(events))
        for position in range(first, last + 1):
            event = events[position - 1]
            mine = event.customer_id is not None
            record = JournalRecord(position, event.customer_id, [event] if mine else [],
                                   [] if mine else [event])  # fmt: skip
            event_rows(record, columns)
        path = range_file(directory, "test", first, last)
        pq.write_table(to_arrow(columns, "test"), path)
        files.append(path)
    return files


def both(
    data_dir: Path, files: list[Path], upto: int, the_meter: Meter, query: MeterQuery,
    level: Level = MINUTE,
) -> tuple[list[MeterRow], list[MeterRow] | None]:  # fmt: skip
    """(raw rows, rollup rows) of the query over the history `files` up to `upto`."""
    empty = to_arrow({name: [] for name in EVENT_COLUMNS}, "test")
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    cloud_events(connection, files, upto, empty)
    raw = run_meter_query(connection, the_meter, query)
    rollup = Rollup(data_dir, "test", the_meter, level)
    rolled = run_rollup_query(connection, the_meter, query, rollup)
    connection.close()
    return raw, rolled


def same(got: dict[Any, float], expected: dict[Any, float]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], value)


@settings(max_examples=100, deadline=None)
@given(
    events=cloud_events_strategy(),
    seconds=st.lists(st.integers(0, 59), min_size=40, max_size=40),
    cut=st.integers(0, 40),
    aggregation=st.sampled_from(list(MeterAggregation)),
    size=st.sampled_from([None, *WindowSize]),
    zone=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
    group_by=st.sampled_from([(), ("subject",), ("model",), ("subject", "model")]),
    bounded=st.booleans(),
    filtered=st.booleans(),
)
def test_the_rollup_answers_as_the_raw_rows(
    events: list[CloudEventRecorded], seconds: list[int], cut: int,
    aggregation: MeterAggregation, size: WindowSize | None, zone: str,
    group_by: tuple[str, ...], bounded: bool, filtered: bool,
) -> None:  # fmt: skip
    """OM-54..OM-56: rolled up to position `cut`, raw after it: the rows of the raw query,
    which are the reference's (several events share a minute bucket, at other seconds)."""
    events = [msgspec.structs.replace(e, time=e.time + timedelta(seconds=s))
              for e, s in zip(events, seconds, strict=False)]  # fmt: skip
    start, end = (BASE + timedelta(days=1), BASE + timedelta(days=3)) if bounded else (None, None)
    the_meter = meter(aggregation)
    query = MeterQuery(now=NOW, start=start, end=end, window_size=size, time_zone=zone,
                       group_by=group_by)  # fmt: skip
    if filtered:  # filters, and an eventFrom inside a minute bucket
        the_meter = msgspec.structs.replace(
            the_meter, event_from=BASE + timedelta(days=1, hours=4, seconds=30)
        )
        query = msgspec.structs.replace(query, subjects=("alice",),
                                        group_filters={"model": Filter("ne", "claude")})  # fmt: skip
    usable = levels(query)
    assert (QUARTER in usable) == (size is not WindowSize.MINUTE and not filtered
                                   and not {"subject"} & set(group_by))  # fmt: skip
    assert MINUTE in usable
    with tempfile.TemporaryDirectory() as temporary:
        data_dir = Path(temporary)
        files = write_history(data_dir, events)
        update_rollup(data_dir, "test", the_meter, min(cut, len(events)))
        answers = [both(data_dir, files, len(events), the_meter, query, level) for level in usable]
    for raw, rolled in answers:
        assert rolled is not None
        same(as_dict(rolled, query), as_dict(raw, query))
        assert [(r.window_start, r.window_end) for r in rolled] == [
            (r.window_start, r.window_end) for r in raw
        ]
        if not filtered:
            same(as_dict(rolled, query), reference(events, the_meter, query))


def test_bounds_within_a_minute_are_answered_raw(tmp_path: Path) -> None:
    """OM-56: a range that does not start on a whole minute is left to the raw rows, one on
    a minute but not a quarter hour to the minute level, a zone with an offset in seconds
    (Amsterdam's +0:19:32 of 1937) to the raw rows."""
    the_meter = meter(MeterAggregation.SUM)
    update_rollup(tmp_path, "test", the_meter, 0)
    query = MeterQuery(now=NOW, start=BASE + timedelta(seconds=1))
    assert levels(query) == []
    assert both(tmp_path, [], 0, the_meter, query)[1] is None
    query = MeterQuery(now=NOW, start=BASE + timedelta(minutes=1))
    assert levels(query) == [MINUTE]
    assert both(tmp_path, [], 0, the_meter, query, QUARTER)[1] is None
    assert both(tmp_path, [], 0, the_meter, query, MINUTE)[1] == []
    old = datetime(1937, 3, 1, tzinfo=UTC)
    query = MeterQuery(now=NOW, start=old, end=old + timedelta(days=2),
                       window_size=WindowSize.DAY, time_zone="Europe/Amsterdam")  # fmt: skip
    assert both(tmp_path, [], 0, the_meter, query)[1] is None


def event(n: int, value: int) -> CloudEventRecorded:
    return CloudEventRecorded(at=NOW, source="s", event_id=str(n), event_type="call",
                              subject="a", time=BASE + timedelta(minutes=n), data={"v": value})  # fmt: skip


def total(data_dir: Path, files: list[Path], upto: int, the_meter: Meter) -> float:
    values = set()
    for level in LEVELS:
        raw, rolled = both(data_dir, files, upto, the_meter, MeterQuery(now=NOW), level)
        assert rolled is not None
        assert [r.value for r in rolled] == [r.value for r in raw]
        values.add(rolled[0].value)
    [value] = values
    return value


def test_upkeep_is_exactly_once_across_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OM-55: a crash while a range is written leaves a temporary file and the cursor where
    it was: the range is built again, the leftover removed, and every event counts once."""
    events = [event(n, n) for n in range(1, 31)]
    files = write_history(tmp_path, events)
    the_meter = meter(MeterAggregation.SUM)
    update_rollup(tmp_path, "test", the_meter, 10)

    def crash(path: Path, write: Any) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(b"half")
        raise OSError("disk gone")

    monkeypatch.setattr(meter_rollup_build, "write_durably", crash)
    with pytest.raises(OSError, match="disk gone"):
        update_rollup(tmp_path, "test", the_meter, 20)
    monkeypatch.undo()
    assert Rollup(tmp_path, "test", the_meter, QUARTER).position == 10
    assert total(tmp_path, files, 30, the_meter) == sum(range(1, 31))
    update_rollup(tmp_path, "test", the_meter, 20)
    update_rollup(tmp_path, "test", the_meter, 20)  # nothing new: nothing written
    update_rollup(tmp_path, "test", the_meter, 30)
    directory = rollup_dir(tmp_path, "test", the_meter) / "minute"
    assert sorted(p.name for p in directory.iterdir()) == [
        range_file(directory, "test", 1, 10).name,
        range_file(directory, "test", 11, 20).name,
        range_file(directory, "test", 21, 30).name,
        "test.position",
    ]
    assert total(tmp_path, files, 30, the_meter) == sum(range(1, 31))


def test_a_changed_definition_is_rebuilt_and_a_deleted_meter_removed(tmp_path: Path) -> None:
    """OM-55: a new group-by is a new rollup built from the whole history (a meter counts the
    events from before it, OM-44); the old one and a deleted meter's are removed."""
    events = [event(n, n) for n in range(1, 21)]
    write_history(tmp_path, events)
    old = meter(MeterAggregation.SUM)
    update_rollups(tmp_path, "test", [old])
    new = msgspec.structs.replace(old, group_by={"model": "$.model", "team": "$.team"})
    update_rollups(tmp_path, "test", [new])
    assert not rollup_dir(tmp_path, "test", old).exists()
    assert [Rollup(tmp_path, "test", new, level).position for level in LEVELS] == [20, 20]
    files = sorted(table_dir(tmp_path, "events").glob("test-*.parquet"))
    assert total(tmp_path, files, 20, new) == sum(range(1, 21))
    update_rollups(tmp_path, "test", [msgspec.structs.replace(new, deleted_at=NOW)])
    assert not rollup_dir(tmp_path, "test", new).exists()
