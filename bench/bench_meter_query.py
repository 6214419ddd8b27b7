"""Issue 16's meter-query bench: a meter query over 10M CloudEvents (one month, 10k customers'
subjects, DAY windows, one groupBy) through the server's own read path
(`persistence.cloud_history.CloudHistory`: DuckDB over the Parquet `events` history plus the
journal tail, here empty), p50 against the target of 1 s.

The history is generated directly as Parquet files in the `events` history's schema (DuckDB
writes them from `range()`), not ingested through HTTP: 10M events through the API would
measure ingest, not the query. Rows look like what `POST /api/v1/events` journals: `type`
`prompt`, `subject` `customer-<n>`, `data` `{"tokens": <int>, "model": "<one of 8>"}`, times
spread over March 2026.

    python -m bench.bench_meter_query [--events 10000000] [--runs 7] [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import duckdb
import pyarrow.parquet as pq

from allotment.domain.meter_queries import MeterQuery, WindowSize
from allotment.domain.meters import Meter, MeterAggregation
from allotment.persistence.cloud_history import CloudHistory
from allotment.persistence.history_cursor import range_file, table_dir
from allotment.persistence.meter_rollup import rollup_dir
from allotment.persistence.meter_rollup_build import update_rollup
from allotment.persistence.meter_rollup_sql import LEVELS

START = datetime(2026, 3, 1, tzinfo=UTC)
FILES = 20  # the exporter writes files of at most 50,000 rows; fewer, larger files here


def generate(data_dir: Path, events: int, customers: int) -> None:
    """`FILES` Parquet files of the `events` history holding `events` CloudEvent rows."""
    directory = table_dir(data_dir, "events")
    directory.mkdir(parents=True)
    (data_dir / "journal" / "test").mkdir(parents=True)
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    per_file = events // FILES
    month_us = 31 * 24 * 3600 * 1_000_000
    for index in range(FILES):
        first = index * per_file + 1
        last = first + per_file - 1
        path = range_file(directory, "test", first, last)
        # the numbers are spread by multiplicative hashing, so every day and subject has events
        connection.execute(f"""
            COPY (SELECT 'test' AS environment, i AS journal_position,
                   CAST(0 AS BIGINT) AS fact_index,
                   TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_microseconds(
                       CAST((i * 2654435761) % {month_us} AS BIGINT)) AS occurred_at,
                   TIMESTAMPTZ '2026-04-01 00:00:00+00' AS accepted_at,
                   'bench' AS source, CAST(i AS VARCHAR) AS id, 'prompt' AS type,
                   'customer-' || CAST((i * 40503) % {customers} AS VARCHAR) AS subject,
                   '{{"tokens": ' || CAST(i % 1000 AS VARCHAR) || ', "model": "m'
                       || CAST(i % 8 AS VARCHAR) || '"}}' AS data,
                   '1.0' AS specversion, CAST(NULL AS VARCHAR) AS customer_id,
                   CAST(NULL AS VARCHAR) AS validation_error
                  FROM range({first}, {last + 1}) t(i))
            TO '{path}' (FORMAT parquet)
        """)
    connection.close()


METER = Meter(id="01JBENCH000000000000000000", slug="tokens", name="tokens",
              aggregation=MeterAggregation.SUM, event_type="prompt", created_at=START,
              updated_at=START, value_property="$.tokens",
              group_by={"model": "$.model"})  # fmt: skip
END = datetime(2026, 4, 1, tzinfo=UTC)
QUERIES = {  # the query; the same in a zone with a half-hour offset; one subject's
    "UTC": MeterQuery(now=END, start=START, end=END, window_size=WindowSize.DAY,
                      group_by=("model",)),
    "UTC, subject customer-42": MeterQuery(now=END, start=START, end=END,
                                           window_size=WindowSize.DAY, group_by=("model",),
                                           subjects=("customer-42",)),
    "Asia/Kolkata": MeterQuery(now=END, start=START - timedelta(hours=5, minutes=30),
                               end=END - timedelta(hours=5, minutes=30),
                               window_size=WindowSize.DAY, time_zone="Asia/Kolkata",
                               group_by=("model",)),
}  # fmt: skip


async def measure(data_dir: Path, runs: int, zone: str) -> dict[str, list[float]]:
    """Seconds per query from the raw rows and from the rollup, the two alternating so
    that both see the same load on the machine; the rows must be the same."""
    paths = {"raw": CloudHistory(data_dir, lambda _e: 0, rollups=False),
             "rollup": CloudHistory(data_dir, lambda _e: 0)}  # fmt: skip
    seconds: dict[str, list[float]] = {"raw": [], "rollup": []}
    answers = {}
    for _ in range(runs):
        for name, history in paths.items():
            began = time.perf_counter()
            rows = await history.query_meter("test", METER, QUERIES[zone])
            seconds[name].append(time.perf_counter() - began)
            assert len(rows) == 31 * 8 or zone.startswith("UTC, subject"), len(rows)
            answers[name] = [(r.window_start, r.groups, r.value) for r in rows]
    assert answers["raw"] == answers["rollup"]
    return seconds


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--save")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        data_dir = Path(temporary)
        began = time.perf_counter()
        generate(data_dir, arguments.events, arguments.customers)
        generated_s = time.perf_counter() - began
        size = sum(f.stat().st_size for f in table_dir(data_dir, "events").iterdir())
        began = time.perf_counter()
        partial_rows = update_rollup(data_dir, "test", METER, arguments.events)
        rollup_s = time.perf_counter() - began
        directory = rollup_dir(data_dir, "test", METER)
        level_rows = {level.name: sum(pq.read_metadata(f).num_rows
                                      for f in (directory / level.name).glob("*.parquet"))
                      for level in LEVELS}  # fmt: skip
        rollup_size = sum(f.stat().st_size for f in directory.rglob("*.parquet"))
        load_before = os.getloadavg()
        zones = {zone: anyio.run(measure, data_dir, arguments.runs, zone) for zone in QUERIES}
        load_after = os.getloadavg()
    result = {
        "bench": "meter query (issue 16)",
        "events": arguments.events, "customers": arguments.customers, "files": FILES,
        "parquet_bytes": size, "generate_s": round(generated_s, 1),
        "rollup": {"rows": partial_rows, "rows_per_level": level_rows, "bytes": rollup_size,
                   "build_s": round(rollup_s, 1),
                   "levels": "quarter: 15 min per model; minute: 1 min per subject, customer"
                             " and model"},
        "query": "SUM of $.tokens, DAY windows over March 2026, groupBy model: 248 rows",
        "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "runs_s": {zone: {name: [round(s, 3) for s in values] for name, values in runs.items()}
                   for zone, runs in zones.items()},
        "p50_s": {zone: {name: p50(values) for name, values in runs.items()}
                  for zone, runs in zones.items()},
        "target_p50_s": 1.0,
        "met": all(p50(runs["rollup"]) < 1.0 for runs in zones.values()),
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if arguments.save:
        Path(arguments.save).write_text(text + "\n")


if __name__ == "__main__":
    main()
