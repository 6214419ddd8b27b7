"""`allotment sql`: run a query against the analytics snapshot, read-only, and render it."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import msgspec

__all__ = ("QueryFailed", "run_query")


class QueryFailed(RuntimeError):
    """DuckDB refused the query (syntax, unknown table…); the message is DuckDB's."""


_JSON = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [columns, *[[_text(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def run_query(path: Path, query: str, output: str = "table") -> str:
    """Run `query` on the snapshot at `path`. The file is opened read-only, so a running
    server (which only ever replaces the file) is never blocked."""
    try:
        connection = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        raise QueryFailed(str(error)) from error
    try:
        connection.execute("SET TimeZone = 'UTC'")
        result = connection.execute(query)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchall()
    except duckdb.Error as error:
        raise QueryFailed(str(error)) from error
    finally:
        connection.close()
    if output == "json":
        records = [
            dict(
                zip(
                    columns,
                    (_text(v) if isinstance(v, datetime | date) else v for v in row),
                    strict=True,
                )
            )
            for row in rows
        ]
        return _JSON.encode(records).decode()
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows([[_text(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    return _table(columns, rows)
