"""The analytics snapshot: a complete DuckDB database, written to a new file and swapped in
with `os.replace`, so an analyst can open `<data-dir>/analytics.duckdb` read-only at any
moment. Append-only histories are Parquet files read through views, so a snapshot never
rewrites history: `events`, `credit_transactions` and `reservation_history` are exported from
the journal (`history_export`), and the audit records of checks (`entitlement_checks`, best
effort) are appended from the server's buffer under
`<data-dir>/history/entitlement_checks/day=YYYY-MM-DD/`.

Everything here blocks: run it on a worker thread or process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from allotment.domain.state import PAYABLE, InvoiceStatus
from allotment.persistence.analytics_rows import Columns
from allotment.persistence.file_modes import PRIVATE
from allotment.persistence.history_rows import JOURNAL_HISTORIES, history_view, parquet_source

__all__ = ("build_database", "create_views", "publish", "to_arrow", "write_history")

# Invoices that charged nothing (yet): a draft, or one voided or cancelled (CN-46).
_UNISSUED = frozenset((InvoiceStatus.PENDING, InvoiceStatus.VOID, InvoiceStatus.CANCELLED,
                       InvoiceStatus.CANCELLED_PROCESSED))  # fmt: skip

DECIMAL = pa.decimal128(38, 12)
_QUANTUM = Decimal(1).scaleb(-12)
TIMESTAMP = pa.timestamp("us", tz="UTC")

_DECIMALS = {
    "amount",
    "price_amount",
    "cost_per_unit",
    "price_per_unit",
    "max_usage",
    "credits_per_unit",
    "rollover_cap",
    "used",
    "unbilled",
    "limit_units",
    "balance",
    "total_granted",
    "total_consumed",
    "total_expired",
    "total_reversed",
    "remaining",
    "charge_amount",
    "usage_units",
    "billable_units",
    "cost_amount",
    "revenue_amount",
    "requested_units",
    "balance_before",
    "balance_after",
    "held_units",
    "held_credits",
    "recorded_units",
    "cut_units",
    # credit notes and the invoices' running totals (CN-46)
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "adjustment_amount",
    "refunded_amount",
    "total_amount",
    "issue_after_reset",
    "period_usage",
    "period_overage",
    "min_rollover",
    "max_rollover",
}
_BOOLEANS = {
    "is_active",
    "is_current_period",
    "hard_limit",
    "auto_created",
    "over_limit",
    "allowed",
    "would_exceed_limit",
    "hold_expired",
    "is_derived",
    "is_soft_limit",
    "preserve_overage_at_reset",
    "has_access",
    "is_voided",
}
_INTEGERS = {
    "amount_minor",
    "interval_months",
    "input_tokens",
    "output_tokens",
    "journal_position",
    "fact_index",
    "customers",
    "sequence",
    "ttl_seconds",
    "priority",
    "expiration_count",
}
_TIMESTAMPS = {
    "due_date",
    "occurred_at",
    "period_start",
    "period_end",
    "current_period_start",
    "current_period_end",
    "expires_at",
    "granted_at",
    "snapshot_taken_at",
    "event_from",
    "usage_period_anchor",
    "measure_usage_from",
    "recurrence_anchor",
}


def _type(name: str) -> pa.DataType:
    if name in _DECIMALS:
        return DECIMAL
    if name in _BOOLEANS:
        return pa.bool_()
    if name in _INTEGERS:
        return pa.int64()
    if name in _TIMESTAMPS or name.endswith("_at"):
        return TIMESTAMP
    return pa.string()


def _values(name: str, values: list[Any]) -> list[Any]:
    if name in _DECIMALS:
        return [None if v is None else Decimal(v).quantize(_QUANTUM) for v in values]
    return values


def to_arrow(columns: Columns, environment: str) -> pa.Table:
    """A table with explicit types, so files written at different times share one schema."""
    count = len(next(iter(columns.values()), []))
    arrays = {"environment": pa.array([environment] * count, pa.string())}
    for name, values in columns.items():
        arrays[name] = pa.array(_values(name, values), type=_type(name))
    return pa.table(arrays)


def write_history(data_dir: Path, table: str, batches: list[pa.Table]) -> int:
    """Append Arrow batches to the day partitions of a history table. Returns rows written."""
    root = data_dir / "history" / table
    if not batches:
        return 0
    arrow = pa.concat_tables(batches)
    _ensure_schema_file(root, arrow.schema)
    if arrow.num_rows == 0:
        return 0
    days = arrow.column("day").to_pylist()
    for day in sorted(set(days)):
        part = arrow.filter(pa.array([d == day for d in days]))
        directory = root / f"day={day}"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        temporary = directory / f".{name}.tmp"
        pq.write_table(part, temporary)
        temporary.chmod(PRIVATE)  # OPS-K7: pyarrow creates it with the umask's bits
        os.replace(temporary, directory / name)  # readers never see a half-written file
    return int(arrow.num_rows)


def _ensure_schema_file(root: Path, schema: pa.Schema) -> None:
    """An empty file fixes the table's schema, so its view works before the first row."""
    directory = root / "day=0000-00-00"
    path = directory / "schema.parquet"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(schema.empty_table(), path)
        path.chmod(PRIVATE)


_VIEWS = """
-- OPS-D5: an event whose cost is unknown is left out of the margin (counting it as free would
-- flatter it) and counted, with its revenue, in the *_cost_unknown columns.
CREATE VIEW margin_by_customer_feature_model AS
    SELECT environment, customer_id, external_id, feature_key, model,
           count(*) FILTER (WHERE cost_known) AS events,
           sum(usage_units) FILTER (WHERE cost_known) AS usage_units,
           sum(revenue_amount) FILTER (WHERE cost_known) AS revenue,
           sum(cost_amount) FILTER (WHERE cost_known) AS cost,
           coalesce(sum(revenue_amount) FILTER (WHERE cost_known), 0)
               - coalesce(sum(cost_amount) FILTER (WHERE cost_known), 0) AS margin,
           count(*) FILTER (WHERE NOT cost_known) AS events_cost_unknown,
           sum(revenue_amount) FILTER (WHERE NOT cost_known) AS revenue_cost_unknown
    FROM events WHERE source IS NULL GROUP BY ALL;  -- Tanso usage, not CloudEvent rows
CREATE VIEW daily_usage_by_feature AS
    SELECT environment, CAST(day AS DATE) AS day, feature_key, count(*) AS events,
           sum(usage_units) AS usage_units, count(DISTINCT customer_id) AS customers
    FROM events WHERE feature_key IS NOT NULL GROUP BY ALL;
CREATE VIEW credit_burndown_by_pool AS
    SELECT environment, pool_id, customer_id, denomination, CAST(day AS DATE) AS day,
           sum(amount) FILTER (WHERE type = 'GRANT') AS granted,
           -sum(amount) FILTER (WHERE type = 'DEBIT') AS consumed,
           -sum(amount) FILTER (WHERE type = 'EXPIRATION') AS expired,
           -sum(amount) FILTER (WHERE type = 'REVERSAL') AS reversed,
           arg_max(balance_after, (journal_position, fact_index)) AS closing_balance
    FROM credit_transactions GROUP BY ALL;
-- snapshot_info has one row per environment: join it on the environment, or every invoice
-- appears once per environment (MNY-C1).
CREATE VIEW accounts_receivable AS
    SELECT i.environment, i.invoice_id, c.external_id, i.customer_id, i.invoice_type, i.status,
           i.amount, i.currency, i.due_date,
           date_diff('day', i.due_date, s.snapshot_taken_at) AS days_past_due
    FROM invoices i
    JOIN customers c USING (environment, customer_id)
    JOIN snapshot_info s USING (environment)
    WHERE i.status IN ({receivable});
-- Net revenue (CN-46): what issued invoices charged (their positive lines: a Tanso credit is
-- a negative line, and every credit allotment issues is backed by a credit note, CN-30, CN-31,
-- so counting it here too would count it twice), less what FINALIZED notes credited, by the
-- month of the invoice and of the note's finalization, per currency.
CREATE VIEW net_revenue_by_month AS
    WITH invoiced AS (
        SELECT i.environment, date_trunc('month', i.created_at) AS month, i.currency,
               sum(t.charge_amount) AS invoiced
        FROM invoices i JOIN invoice_items t USING (environment, invoice_id)
        WHERE t.charge_amount > 0 AND i.status NOT IN ({unissued})
        GROUP BY ALL
    ), credited AS (
        SELECT environment, date_trunc('month', finalized_at) AS month, currency,
               sum(total_amount) AS credited
        FROM credit_notes WHERE credit_note_status = 'FINALIZED' GROUP BY ALL
    )
    SELECT environment, month, currency, coalesce(invoiced, 0) AS invoiced,
           coalesce(credited, 0) AS credited,
           coalesce(invoiced, 0) - coalesce(credited, 0) AS net_revenue
    FROM invoiced FULL OUTER JOIN credited USING (environment, month, currency);
""".format(  # noqa: S608 (the domain's own status names, not input)
    receivable=", ".join(f"'{status.value}'" for status in sorted(PAYABLE)),
    unissued=", ".join(f"'{status.value}'" for status in sorted(_UNISSUED)),
)


def build_database(data_dir: Path, tables: dict[str, list[pa.Table]], info: list[pa.Table]) -> Path:
    """Write every state table and the history views into a new file, then swap it in as
    `analytics.duckdb`. The journal histories' `schema.parquet` files must exist
    (`history_export.write_schema_files`)."""
    final = data_dir / "analytics.duckdb"
    temporary = data_dir / f".analytics-{uuid.uuid4().hex}.duckdb"
    connection = duckdb.connect(str(temporary))
    try:
        connection.execute("SET TimeZone = 'UTC'")
        for name, batches in sorted(tables.items()):
            connection.register("incoming", pa.concat_tables(batches))
            connection.execute(f'CREATE TABLE "{name}" AS SELECT * FROM incoming')  # noqa: S608
            connection.unregister("incoming")
        connection.register("incoming", pa.concat_tables(info))
        connection.execute("CREATE TABLE snapshot_info AS SELECT * FROM incoming")
        connection.unregister("incoming")
        create_views(connection, [data_dir])
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    return publish(temporary, final)


def create_views(connection: duckdb.DuckDBPyConnection, data_dirs: Sequence[Path]) -> None:
    """The history views, each over the union of every data directory's Parquet files (one
    directory, or one per shard: SCL-74), then the ready-made views over the tables."""
    checks = [d / "history" / "entitlement_checks" / "*" / "*.parquet" for d in data_dirs]
    source = parquet_source(checks)
    connection.execute(f"CREATE VIEW entitlement_checks AS SELECT * FROM {source}")  # noqa: S608
    for table in JOURNAL_HISTORIES:
        connection.execute(history_view([d / "history" / table for d in data_dirs], table))
    connection.execute(_VIEWS)


def publish(temporary: Path, final: Path) -> Path:
    """Swap a finished database in: readers see the old file or the new one, never half."""
    temporary.chmod(PRIVATE)  # OPS-K7: DuckDB creates it with the umask's bits
    os.replace(temporary, final)
    return final
