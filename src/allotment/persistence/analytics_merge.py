"""The analytics snapshot of a sharded data directory (docs/scale-out.md SCL-74..SCL-76).

Each shard writes its own `analytics.duckdb` and Parquet histories under
`<data-dir>/shards/<k>/`, as a single process does under `<data-dir>/`. The merge then writes
one `<data-dir>/analytics.duckdb` with the same tables and views: every customer table is the
union of the shards' (each customer lives on one shard), the catalog tables are shard 0's (every
shard holds the same catalog, and shard 0 takes a change first, SCL-13), `snapshot_info` keeps
one row per environment (`shard_info` has the shards' own rows), and every history view reads
the union of every shard's Parquet files. Nothing is copied from the histories.

Everything here blocks: run it on a worker thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb

from allotment.persistence.analytics import create_views, publish
from allotment.persistence.analytics_rows.catalog import (
    CreditModelRow,
    FeatureRow,
    MeterRow,
    PlanFeatureRow,
    PlanRow,
)
from allotment.persistence.reports import AnalyticsReport

__all__ = ("AnalyticsUnreachable", "merge_databases", "merge_reports")

# Catalog tables: identical on every shard, so taken once (from shard 0).
CATALOG_TABLES = frozenset(row.table for row in (PlanRow, FeatureRow, PlanFeatureRow,
                                                 CreditModelRow, MeterRow))  # fmt: skip
_INFO = """
CREATE TABLE snapshot_info AS
    SELECT environment, CAST(sum(journal_position) AS BIGINT) AS journal_position,
           max(snapshot_taken_at) AS snapshot_taken_at,
           CAST(sum(customers) AS BIGINT) AS customers
    FROM shard_info GROUP BY environment ORDER BY environment
"""


class AnalyticsUnreachable(RuntimeError):
    """A shard's analytics database cannot be read from here (SCL-76): the message says
    which; nothing was written."""


def merge_reports(
    data_dir: Path, shard_dirs: Sequence[Path], reports: Sequence[AnalyticsReport]
) -> AnalyticsReport:
    """Merge the shards' databases (each just written, reported in `reports`) into
    `data_dir/analytics.duckdb`, and report the whole: customers and history rows added up,
    the rows of every table and view of the merged database (SCL-75).

    Raises:
        AnalyticsUnreachable: a shard's `analytics.duckdb` is not visible from this process.
    """
    started = time.perf_counter()
    path, tables = merge_databases(data_dir, shard_dirs)
    exported: dict[str, int] = {}
    for report in reports:
        for environment, position in report.exported.items():
            exported[environment] = exported.get(environment, 0) + position
    return AnalyticsReport(
        path=str(path),
        taken_at=max(report.taken_at for report in reports),
        customers=sum(report.customers for report in reports),
        history_rows=sum(report.history_rows for report in reports),
        exported=exported,
        seconds=max(report.seconds for report in reports) + time.perf_counter() - started,
        tables=tables,
    )


def merge_databases(data_dir: Path, shard_dirs: Sequence[Path]) -> tuple[Path, dict[str, int]]:
    """Write `data_dir/analytics.duckdb` from the shards' own; its path and rows per table.

    Raises:
        AnalyticsUnreachable: a shard's `analytics.duckdb` is not visible from this process.
    """
    sources = [directory / "analytics.duckdb" for directory in shard_dirs]
    missing = [str(source) for source in sources if not source.exists()]
    if missing:
        raise AnalyticsUnreachable(
            f"cannot read {', '.join(missing)}: every shard's directory must be mounted at the "
            "same path where the front door runs (docs/scale-out.md SCL-76)"
        )
    return _merge(data_dir, sources, shard_dirs)


def _merge(
    data_dir: Path, sources: Sequence[Path], shard_dirs: Sequence[Path]
) -> tuple[Path, dict[str, int]]:
    temporary = data_dir / f".analytics-{uuid.uuid4().hex}.duckdb"
    connection = duckdb.connect(str(temporary))
    try:
        connection.execute("SET TimeZone = 'UTC'")
        for k, source in enumerate(sources):
            literal = str(source.resolve()).replace("'", "''")  # DDL takes no parameters
            connection.execute(f"ATTACH '{literal}' AS shard_{k} (READ_ONLY)")
        for name, holders in _tables(connection).items():
            shards = holders[:1] if name in CATALOG_TABLES else holders
            # snapshot_info's rows keep the shard they came from, in `shard_info`
            info = name == "snapshot_info"
            union = " UNION ALL BY NAME ".join(
                f'SELECT {f"{k} AS shard, " if info else ""}* FROM shard_{k}."{name}"'  # noqa: S608
                for k in shards
            )
            connection.execute(f'CREATE TABLE "{"shard_info" if info else name}" AS {union}')
        connection.execute(_INFO)
        for k in range(len(sources)):
            connection.execute(f"DETACH shard_{k}")  # the file must not name the shards' files
        create_views(connection, shard_dirs)
        rows = _rows(connection)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return publish(temporary, data_dir / "analytics.duckdb"), rows


def _tables(connection: duckdb.DuckDBPyConnection) -> dict[str, list[int]]:
    """Each base table of the shards' databases, and which shards have it, in shard order."""
    found = connection.execute(
        "SELECT table_name, database_name FROM duckdb_tables() "
        "WHERE database_name LIKE 'shard_%' ORDER BY table_name"
    ).fetchall()
    tables: dict[str, list[int]] = {}
    for name, database in found:
        tables.setdefault(name, []).append(int(database.removeprefix("shard_")))
    return {name: sorted(shards) for name, shards in tables.items()}


def _rows(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    query = "SELECT table_name FROM information_schema.tables ORDER BY table_name"
    names = [name for (name,) in connection.execute(query).fetchall()]
    return {
        name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]  # noqa: S608
        for name in names
    }
