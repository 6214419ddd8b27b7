"""The official `openmeter` client, unchanged, against a real allotment server: every read
operation of issue 16 (event listing v1 and v2, meter queries by GET and POST, CSV, subjects,
group-by values), exact up to the instant of the query whether the events are in the Parquet
history or still only in the journal (docs/openmeter.md "Queries and listing", OM-40..OM-53).

One server for the module; each test uses names of its own."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta
from math import isclose
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotment.domain.meter_queries import MeterQuery, WindowSize
from allotment.domain.meters import CloudEventRecorded, MeterAggregation
from openmeter import Client
from openmeter import models as m
from tests.openmeter.meter_reference import meter, reference
from tests.openmeter.support import A, refused
from tests.reliability.server import Server

DST = datetime(2026, 3, 8, 12, tzinfo=UTC)  # New York springs forward at 07:00 UTC that day


def event(event_id: str, subject: str, type_: str, at: datetime, **data: Any) -> m.Event:
    return m.Event(id=event_id, source="reads", specversion="1.0", type=type_, subject=subject,
                   time=at, data=data or None)  # fmt: skip


@pytest.fixture(scope="module")
def tokens(om: Client) -> str:
    """Meter `rd_tokens` (SUM of $.tokens by model) with events around New York's DST change:
    customer `rd` claims subject `rd-a`; subject `rd-b` belongs to no one."""
    om.meters.create(m.MeterCreate(slug="rd_tokens", aggregation="SUM", event_type="rd.llm",
                                   value_property="$.tokens", group_by={"model": "$.model"}))  # fmt: skip
    om.customers.create(m.CustomerCreate(name="rd", key="rd", usage_attribution=m.CustomerUsageAttribution(subject_keys=["rd-a"])))  # fmt: skip
    om.events.ingest_events([
        event("t1", "rd-a", "rd.llm", DST - timedelta(hours=8), tokens=10, model="big"),   # 7 Mar NY
        event("t2", "rd-a", "rd.llm", DST - timedelta(hours=2), tokens=5, model="small"),  # 8 Mar
        event("t3", "rd-b", "rd.llm", DST + timedelta(hours=14), tokens="7", model="big"),  # 8 Mar
        event("t4", "rd-b", "rd.llm", DST + timedelta(hours=17), tokens=1, model="big"),   # 9 Mar
        event("t5", "rd-a", "rd.other", DST, tokens=1000, model="big"),  # another type
    ])  # fmt: skip
    return "rd_tokens"


def totals(result: m.MeterQueryResult) -> dict[tuple[Any, ...], float]:
    return {(r.subject, *sorted(r.group_by.items())): r.value for r in result.data}


def test_a_query_without_window_totals_the_meter(om: Client, tokens: str) -> None:
    """OM-42: no windowSize: one row per group over the whole range; subject null unless
    grouped by it."""
    result = om.meters.query_json(tokens)
    assert [(r.subject is None, r.value) for r in result.data] == [(True, 23.0)]
    grouped = om.meters.query_json(tokens, group_by=["subject", "model"])
    assert totals(grouped) == {
        ("rd-a", ("model", "big")): 10.0, ("rd-a", ("model", "small")): 5.0,
        ("rd-b", ("model", "big")): 8.0,
    }  # fmt: skip


def test_day_windows_in_new_york_across_the_dst_change(om: Client, tokens: str) -> None:
    """OM-43: DAY windows are New York days; 8 March 2026 lasts 23 hours."""
    start = datetime(2026, 3, 7, 5, tzinfo=UTC)  # midnight in New York (EST)
    result = om.meters.query_json(tokens, window_size="DAY", window_time_zone="America/New_York",
                                  from_parameter=start)  # fmt: skip
    rows = [(r.window_start, r.window_end, r.value) for r in result.data]
    assert rows == [
        (start, datetime(2026, 3, 8, 5, tzinfo=UTC), 10.0),
        (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC), 12.0),
        (datetime(2026, 3, 9, 4, tzinfo=UTC), datetime(2026, 3, 10, 4, tzinfo=UTC), 1.0),
    ]
    # OM-48: the same windows as CSV (times in UTC)
    text = om.meters.query_csv(tokens, window_size="DAY", window_time_zone="America/New_York",
                               from_parameter=start)  # fmt: skip
    assert list(csv.reader(io.StringIO(text))) == [
        ["window_start", "window_end", "subject", "customer_id", "value"],
        ["2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z", "", "", "10.0"],
        ["2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "", "", "12.0"],
        ["2026-03-09T04:00:00Z", "2026-03-10T04:00:00Z", "", "", "1.0"],
    ]
    problem = refused(lambda: om.meters.query_json(tokens, window_size="DAY",
                      window_time_zone="America/New_York", from_parameter=DST))  # fmt: skip
    assert (problem.status, problem.fields) == (400, ["from"])  # OM-41: not on a boundary
    problem = refused(lambda: om.meters.query_json(tokens, window_time_zone="Mars/Olympus"))
    assert problem.fields == ["windowTimeZone"]


def test_minute_and_hour_windows(om: Client, tokens: str) -> None:
    """OM-41, OM-42: MINUTE and HOUR windows, `to` exclusive; a bound off the window's grid
    is refused naming it."""
    start = DST - timedelta(hours=8)
    rows = om.meters.query_json(tokens, window_size="MINUTE", from_parameter=start,
                                to=DST + timedelta(hours=17))  # fmt: skip
    minute = timedelta(minutes=1)
    assert [(r.window_start, r.window_end, r.value) for r in rows.data] == [
        (start, start + minute, 10.0),
        (DST - timedelta(hours=2), DST - timedelta(hours=2) + minute, 5.0),
        (DST + timedelta(hours=14), DST + timedelta(hours=14) + minute, 7.0),
    ]  # t4, at `to`, is left out: `to` is exclusive
    kolkata = start - timedelta(minutes=30)  # 09:00 there: an hour of its grid
    hours = om.meters.query_json(tokens, window_size="HOUR", from_parameter=kolkata,
                                 window_time_zone="Asia/Kolkata", subject=["rd-b"])  # fmt: skip
    assert [(r.window_start, r.value) for r in hours.data] == [
        (DST + timedelta(hours=13, minutes=30), 7.0),  # Kolkata hours start at :30 UTC
        (DST + timedelta(hours=16, minutes=30), 1.0),
    ]
    off_grid = start + timedelta(seconds=30)
    problem = refused(lambda: om.meters.query_json(tokens, window_size="MINUTE", to=off_grid))
    assert (problem.status, problem.fields) == (400, ["to"])


def test_filters_by_subject_customer_and_group(om: Client, tokens: str) -> None:
    """OM-47: subject, filterCustomerId, filterGroupBy (as the client sends it) and
    advancedMeterGroupByFilters narrow the events counted."""
    customer = om.customers.get("rd").id
    assert totals(om.meters.query_json(tokens, subject=["rd-b"])) == {(None,): 8.0}
    assert totals(om.meters.query_json(tokens, filter_customer_id=[customer])) == {(None,): 15.0}
    assert totals(om.meters.query_json(tokens, filter_group_by={"model": "small"})) == {
        (None,): 5.0
    }
    advanced: Any = {"model": {"$in": ["small", "huge"]}}  # json.dumps'd: a dict, not a model
    assert totals(om.meters.query_json(tokens, advanced_meter_group_by_filters=advanced)) == {
        (None,): 5.0
    }
    problem = refused(lambda: om.meters.query_json(tokens, group_by=["colour"]))
    assert (problem.status, problem.fields) == (400, ["groupBy"])


def test_post_query_and_csv(om: Client, tokens: str) -> None:
    """OM-44, OM-48: POST takes the same query as a body, filterGroupBy with lists; CSV by GET
    (with parameters) and by POST (the client sends no body)."""
    body = m.MeterQueryRequest(group_by=["model"], filter_group_by={"model": ["big", "small"]},
                               window_size="MONTH")  # fmt: skip
    posted = om.meters.query(tokens, body)
    assert totals(posted) == {(None, ("model", "big")): 18.0, (None, ("model", "small")): 5.0}
    assert {r.window_start for r in posted.data} == {datetime(2026, 3, 1, tzinfo=UTC)}
    text = om.meters.query_csv(tokens, group_by=["subject", "model"], window_size="DAY")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["window_start", "window_end", "subject", "customer_id", "model", "value"]
    assert rows[1:] == [  # UTC days: t3 and t4 fall on 9 March there
        ["2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", "rd-a", "", "big", "10.0"],
        ["2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", "rd-a", "", "small", "5.0"],
        ["2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z", "rd-b", "", "big", "8.0"],
    ]
    everything = list(csv.reader(io.StringIO(om.meters.query_csv_post(tokens))))
    assert everything[1][-1] == "23.0"


def test_subjects_and_group_by_values(om: Client, tokens: str) -> None:
    """OM-49: the distinct subjects (from the beginning) and groupBy values (from 24 hours
    ago unless `from` says otherwise)."""
    assert om.meters.list_subjects(tokens) == ["rd-a", "rd-b"]
    assert om.meters.list_subjects(tokens, from_parameter=DST) == ["rd-b"]
    assert om.meters.list_group_by_values(tokens, "model", from_parameter=DST - timedelta(days=1)) == ["big", "small"]  # fmt: skip
    assert om.meters.list_group_by_values(tokens, "model") == []  # those are weeks old
    assert refused(lambda: om.meters.list_group_by_values(tokens, "colour")).status == 404


def test_listing_events_v1_and_v2(om: Client, tokens: str) -> None:
    """OM-50..OM-53: v1 filters (partial id and subject, customer, time), v2 filter and cursor,
    newest first, with the customer and validation error each event was journalled with."""
    old = DST - timedelta(days=2)
    listed = om.events.list(from_parameter=old, subject="rd-")
    assert [e.event.id for e in listed] == ["t4", "t3", "t5", "t2", "t1"]
    customer = om.customers.get("rd").id
    assert {e.event.id for e in om.events.list(from_parameter=old, customer_id=[customer])} == {
        "t1", "t2", "t5"
    }  # fmt: skip
    unattributed = next(e for e in listed if e.event.id == "t3")
    assert unattributed.customer_id is None and "rd-b" in (unattributed.validation_error or "")
    assert unattributed.event.data == {"tokens": "7", "model": "big"}
    assert om.events.list(from_parameter=old, id="t4", limit=1)[0].event.subject == "rd-b"
    assert om.events.list() == []  # `from` defaults to 72 hours ago; these are months old
    # `to` bounds the event time and `ingestedAtFrom`/`ingestedAtTo` the ingestion, inclusive
    until = om.events.list(from_parameter=old, subject="rd-", to=DST)
    assert [e.event.id for e in until] == ["t5", "t2", "t1"]  # t5 is at DST itself
    ours = {"t1", "t2", "t3", "t4", "t5"}
    stamps = sorted(e.ingested_at for e in listed)
    low, high, tick = stamps[0], stamps[-1], timedelta(microseconds=1)
    between = om.events.list(from_parameter=old, ingested_at_from=low, ingested_at_to=high)
    assert {e.event.id for e in between} & ours == ours
    before = om.events.list(from_parameter=old, ingested_at_to=low - tick)
    after = om.events.list(from_parameter=old, ingested_at_from=high + tick)
    assert not {e.event.id for e in before + after} & ours
    problem = refused(lambda: om.events.list(from_parameter=DST, to=old))
    assert (problem.status, problem.fields) == (400, ["to"])
    # The client serialises `filter` with json.dumps: a plain dict, not its model class.
    wanted: Any = {"subject": {"$like": "rd-%"}, "type": {"$eq": "rd.llm"}}
    paged = om.events_v2.list(filter=wanted, limit=2)  # the client follows nextCursor
    pages = [[e.event.id for e in page] for page in paged.by_page()]
    assert [p for p in pages if p] == [["t4", "t3"], ["t2", "t1"]]
    unknown: Any = {"colour": {"$eq": "x"}}
    problem = refused(lambda: list(om.events_v2.list(filter=unknown)))
    assert problem.fields == ["filter.colour"]
    # customerId ($in), time and ingestedAt (FilterTime), every operator holding
    narrowed: Any = {
        "customerId": {"$in": [customer]},
        "time": {"$gt": _iso(DST - timedelta(hours=8)), "$lte": _iso(DST)},
        "ingestedAt": {"$gte": _iso(low), "$lte": _iso(high)},
    }
    assert [e.event.id for e in om.events_v2.list(filter=narrowed)] == ["t5", "t2"]
    either: Any = {"subject": {"$like": "rd-%"},
                   "time": {"$or": [{"$lt": _iso(DST - timedelta(hours=7))},
                                    {"$gt": _iso(DST + timedelta(hours=15))}]}}  # fmt: skip
    assert [e.event.id for e in om.events_v2.list(filter=either)] == ["t4", "t1"]
    equal: Any = {"time": {"$eq": _iso(DST)}}  # FilterTime has no $eq
    problem = refused(lambda: list(om.events_v2.list(filter=equal)))
    assert problem.fields == ["filter.time.$eq"]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_an_event_without_time_happened_when_received(om: Client, http: httpx.Client) -> None:
    """OM-4, OM-9, OM-51: no `time`: the event's time is its ingestion; a type no meter counts
    is kept, attributed, and listed with the validation error it was journalled with."""
    om.customers.create(m.CustomerCreate(name="nt", key="nt", usage_attribution=m.CustomerUsageAttribution(subject_keys=["nt-a"])))  # fmt: skip
    om.events.ingest_event(m.Event(id="nt1", source="reads", specversion="1.0", type="nt.unmetered", subject="nt-a"))  # fmt: skip
    [listed] = om.events.list(id="nt1")  # `from` defaults to 72 hours ago: it is now
    assert listed.event.time == listed.ingested_at == listed.stored_at
    assert listed.customer_id == om.customers.get("nt").id
    assert "no meter" in (listed.validation_error or "")
    assert "nt.unmetered" in (listed.validation_error or "")


def test_exact_across_the_parquet_history_and_the_journal(
    om: Client, http: httpx.Client, server: Server
) -> None:
    """OM-40, OM-57: events exported to Parquet (and rolled up) and events only in the journal
    count together, each once, the instant they are acknowledged."""
    meter = om.meters.create(
        m.MeterCreate(slug="rd_calls", aggregation="COUNT", event_type="rd.call")
    )
    om.events.ingest_events([event(f"c{n}", "rd-a", "rd.call", DST) for n in range(3)])
    assert totals(om.meters.query_json("rd_calls")) == {(None,): 3.0}
    assert http.post(f"{A}/snapshots").status_code == 201  # exports the journal to Parquet
    # <data-dir>/history/meter_rollups, or each shard's under <data-dir>/shards/<k>/ (SCL-20)
    rollups = [p for p in server.data_dir.rglob("*.parquet") if "meter_rollups" in p.parts]
    assert {p.parent.parent.name.split("-")[0] for p in rollups} >= {meter.id}
    om.events.ingest_events([event(f"c{n}", "rd-a", "rd.call", DST) for n in range(2, 6)])
    assert totals(om.meters.query_json("rd_calls")) == {(None,): 6.0}  # c2 was a duplicate
    assert http.post(f"{A}/snapshots").status_code == 201
    assert totals(om.meters.query_json("rd_calls")) == {(None,): 6.0}


def test_analytics_has_meters_features_and_cloud_events(
    om: Client, http: httpx.Client, server: Server, tokens: str
) -> None:
    """OM-60: the snapshot's `meters` and `features` tables, and CloudEvents in the `events`
    history with their source, id, type, subject and data (docs/analytics.md)."""
    om.features.create(m.FeatureCreateInputs(key="rd_feature", name="Tokens", meter_slug=tokens))
    assert http.post(f"{A}/snapshots").status_code == 201
    connection = duckdb.connect(str(server.data_dir / "analytics.duckdb"), read_only=True)
    try:
        meter = connection.execute(
            "SELECT aggregation, event_type, value_property, group_by FROM meters WHERE slug = ?",
            [tokens],
        ).fetchall()
        feature = connection.execute(
            "SELECT meter_slug FROM features WHERE key = 'rd_feature'"
        ).fetchall()
        event = connection.execute(
            "SELECT source, type, subject, data::JSON->>'model', customer_id IS NULL,"
            " validation_error IS NOT NULL FROM events WHERE id = 't3'"
        ).fetchall()
        usage_rows = connection.execute(
            "SELECT count(*) FROM margin_by_customer_feature_model WHERE feature_key IS NULL"
            " AND events > 0 AND customer_id IN (SELECT customer_id FROM events"
            " WHERE source IS NOT NULL)"
        ).fetchone()
    finally:
        connection.close()
    assert meter == [("SUM", "rd.llm", "$.tokens", '{"model":"$.model"}')]
    assert feature == [(tokens,)]
    assert event == [("reads", "rd.llm", "rd-b", "big", True, True)]
    assert usage_rows == (0,)  # CloudEvent rows are not Tanso usage in the margin view


_serial = iter(range(10**6))
# (id, hour after DST, value, model, subject): ids 0..4 so resends happen, values numeric or
# not, a model or none. Both subjects are claimed by no customer, so each subject's events are
# environment facts journalled in the order sent: LATEST's tie-break (OM-46). The subjects'
# events are a minute apart, so no tie is between two subjects (over shards, two shards').
_SUBJECTS = ("hy-a", "hy-b")
_EVENTS = st.tuples(
    st.integers(0, 4),
    st.integers(0, 47),
    st.sampled_from([1, 2, 5, "3", "x", "y"]),
    st.sampled_from(["gpt", "claude", None]),
    st.sampled_from(_SUBJECTS),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    aggregation=st.sampled_from(list(MeterAggregation)),
    values=st.lists(_EVENTS, min_size=1, max_size=12),
    cuts=st.sets(st.integers(1, 11), max_size=4),
    group_by=st.sampled_from([(), ("model",), ("subject",), ("subject", "model")]),
)
def test_every_aggregation_through_the_client(
    om: Client,
    aggregation: MeterAggregation,
    values: list[tuple[int, int, Any, str | None, str]],
    cuts: set[int],
    group_by: tuple[str, ...],
) -> None:
    """OM-44..OM-46 end to end: events (resent ids among them, within a batch and across
    batches, times out of order, groups) ingested by the client in batches and queried by HOUR
    and group, against the brute-force reference of tests/openmeter/meter_reference.py."""
    slug = f"hy_{next(_serial)}"
    value_property = None if aggregation is MeterAggregation.COUNT else "$.v"
    om.meters.create(m.MeterCreate(slug=slug, aggregation=aggregation.value, event_type=slug,
                                   value_property=value_property,
                                   group_by={"model": "$.model"}))  # fmt: skip
    sent: list[m.Event] = []
    first: dict[int, CloudEventRecorded] = {}
    for ident, hour, value, model, subject in values:
        at = DST + timedelta(hours=hour, minutes=_SUBJECTS.index(subject))
        data: dict[str, Any] = {"v": value} if model is None else {"v": value, "model": model}
        sent.append(event(f"{slug}-{ident}", subject, slug, at, **data))
        first.setdefault(ident, CloudEventRecorded(  # a resent (source, id) is dropped (OM-6)
            at=DST, source="reads", event_id=str(ident), event_type="call", subject=subject,
            time=at, data=data))  # fmt: skip
    bounds = [0, *sorted(c for c in cuts if c < len(sent)), len(sent)]
    for low, high in itertools.pairwise(bounds):
        om.events.ingest_events(sent[low:high])
    query = MeterQuery(now=DST, window_size=WindowSize.HOUR, group_by=group_by)
    expected = reference(list(first.values()), meter(aggregation), query)
    got = om.meters.query_json(slug, window_size="HOUR", group_by=list(group_by))
    rows = {}
    for row in got.data:
        named = {"subject": row.subject, **row.group_by}
        rows[(row.window_start, tuple(named.get(name) for name in group_by))] = row.value
    assert rows.keys() == {(span[0], groups) for span, groups in expected}
    for (span, groups), value in expected.items():
        assert isclose(rows[(span[0], groups)], value, rel_tol=1e-9, abs_tol=1e-9), (span, value)
