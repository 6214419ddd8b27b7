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
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import duckdb

from allotment.domain.meter_queries import MeterQuery, WindowSize
from allotment.domain.meters import Meter, MeterAggregation
from allotment.persistence.cloud_history import CloudHistory
from allotment.persistence.history_cursor import range_file, table_dir

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


async def measure(data_dir: Path, runs: int) -> list[float]:
    history = CloudHistory(data_dir, lambda _environment: 0)
    meter = Meter(id="01JBENCH000000000000000000", slug="tokens", name="tokens",
                  aggregation=MeterAggregation.SUM, event_type="prompt", created_at=START,
                  updated_at=START, value_property="$.tokens",
                  group_by={"model": "$.model"})  # fmt: skip
    query = MeterQuery(now=datetime(2026, 4, 1, tzinfo=UTC), start=START,
                       end=datetime(2026, 4, 1, tzinfo=UTC), window_size=WindowSize.DAY,
                       group_by=("model",))  # fmt: skip
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = await history.query_meter("test", meter, query)
        seconds.append(time.perf_counter() - began)
        assert len(rows) == 31 * 8, len(rows)
    return seconds


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
        seconds = anyio.run(measure, data_dir, arguments.runs)
    result = {
        "bench": "meter query (issue 16)",
        "events": arguments.events, "customers": arguments.customers, "files": FILES,
        "parquet_bytes": size, "generate_s": round(generated_s, 1),
        "query": "SUM of $.tokens, DAY windows over March 2026 (UTC), groupBy model: 248 rows",
        "runs_s": [round(s, 3) for s in seconds], "p50_s": round(statistics.median(seconds), 3),
        "target_p50_s": 1.0, "met": statistics.median(seconds) < 1.0,
    }  # fmt: skip
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if arguments.save:
        Path(arguments.save).write_text(text + "\n")


if __name__ == "__main__":
    main()
