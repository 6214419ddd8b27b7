"""Rows of the journal-derived histories, and the views that read them.

A history row is derived from one fact of one journal record and carries where it came from:
`journal_position` (the record) and `fact_index` (the fact's index in the record's facts). The
pair is unique per environment, so "exported exactly once" is a query, not a belief:

    SELECT environment, journal_position, fact_index, count(*) FROM events
    GROUP BY ALL HAVING count(*) > 1     -- always empty

The journal knows a customer by id only (its external id is in `CustomerCreated`, usually far
behind the exported range), so the `events` view joins the snapshot's `customers` table for
`external_id`, which is the customer's current external id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import msgspec

from allotment.domain.credits import CreditTransaction
from allotment.domain.facts import (
    CloudEventRecorded,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsReversed,
    UsageRecorded,
)
from allotment.persistence.analytics_rows import Columns
from allotment.persistence.history_reservations import (
    RESERVATION_COLUMNS,
    reservation_fact_rows,
    reservation_view_query,
)
from allotment.persistence.ports import JournalRecord

__all__ = (
    "JOURNAL_HISTORIES",
    "event_rows",
    "history_view",
    "ledger_rows",
    "parquet_source",
)

EVENT_COLUMNS = (
    "day",
    "journal_position",
    "fact_index",
    "idempotency_key",
    "customer_id",
    "event_name",
    "feature_key",
    "subscription_id",
    "occurred_at",
    "accepted_at",
    "usage_units",
    "billable_units",
    "over_limit",
    "cost_amount",
    "revenue_amount",
    "model",
    "model_provider",
    "input_tokens",
    "output_tokens",
    "flow_id",
    "meta",
    # CloudEvents (issue 16, OM-60): null on the rows of Tanso usage.
    "source",
    "id",
    "type",
    "subject",
    "data",
    "specversion",
    "validation_error",
)
LEDGER_COLUMNS = (
    "day",
    "journal_position",
    "fact_index",
    "transaction_id",
    "customer_id",
    "pool_id",
    "denomination",
    "type",
    "amount",
    "balance_before",
    "balance_after",
    "grant_id",
    "event_key",
    "subscription_id",
    "created_at",
    "description",
)
LEDGER_FACTS = (CreditsGranted, CreditsDebited, CreditsExpired, CreditsReversed)


def _day(at: datetime) -> str:
    return at.date().isoformat()


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


_NO_CLOUD_EVENT = (None,) * 7


def _cloud_event_row(
    record: JournalRecord, index: int, fact: CloudEventRecorded
) -> tuple[object, ...]:
    """The row of one CloudEvent (OM-60): its `time` is `occurred_at`, its ingestion
    `accepted_at`, its `data` JSON text; the Tanso usage columns are null (the usage it made
    toward Tanso features has rows of its own, `UsageRecorded` in the same record)."""
    data = None if fact.data is None else msgspec.json.encode(fact.data).decode()
    return (
        _day(fact.at), record.position, index, None, _text(fact.customer_id), None, None,
        None, fact.time, fact.at, None, None, None, None, None, None, None, None, None, None,
        None, fact.source, fact.event_id, fact.event_type, fact.subject, data,
        fact.specversion, fact.validation_error,
    )  # fmt: skip


def event_rows(record: JournalRecord, into: Columns) -> int:
    """Append one row per `UsageRecorded` of `record` (an accepted usage event) and one per
    `CloudEventRecorded` (an ingested CloudEvent). Returns the number of rows appended."""
    added = 0
    # An unattributed CloudEvent is an environment fact (`record.catalog`, OM-9); a record
    # has facts or catalog facts, so the index is the fact's place in whichever it has.
    for index, fact in enumerate([*record.facts, *record.catalog]):
        if isinstance(fact, CloudEventRecorded):
            for column, value in zip(
                EVENT_COLUMNS, _cloud_event_row(record, index, fact), strict=True
            ):
                into[column].append(value)
            added += 1
            continue
        if not isinstance(fact, UsageRecorded):
            continue
        values = (
            _day(fact.at), record.position, index, fact.idempotency_key,
            str(record.customer_id), fact.event_name, fact.feature_key,
            _text(fact.subscription_id), fact.occurred_at, fact.at, fact.units,
            fact.billable_units, fact.over_limit, fact.cost_amount, fact.revenue_amount,
            fact.model, fact.model_provider, fact.input_tokens, fact.output_tokens,
            fact.flow_id, None if fact.meta is None else msgspec.json.encode(fact.meta).decode(),
            *_NO_CLOUD_EVENT,
        )  # fmt: skip
        for column, value in zip(EVENT_COLUMNS, values, strict=True):
            into[column].append(value)
        added += 1
    return added


def ledger_rows(record: JournalRecord, into: Columns) -> int:
    """Append one row per credit transaction of `record` (CRD-20). Returns the rows appended."""
    added = 0
    for index, fact in enumerate(record.facts):
        if not isinstance(fact, LEDGER_FACTS):
            continue
        tx: CreditTransaction = fact.transaction
        values = (
            _day(tx.created_at), record.position, index, str(tx.id), str(record.customer_id),
            str(tx.pool_id), fact.denomination, tx.type.value, tx.amount, tx.balance_before,
            tx.balance_after, _text(tx.grant_id), tx.event_key, _text(tx.subscription_id),
            tx.created_at, tx.description,
        )  # fmt: skip
        for column, value in zip(LEDGER_COLUMNS, values, strict=True):
            into[column].append(value)
        added += 1
    return added


# table -> (its columns, the function appending a record's rows)
JOURNAL_HISTORIES: dict[str, tuple[tuple[str, ...], Callable[[JournalRecord, Columns], int]]] = {
    "events": (EVENT_COLUMNS, event_rows),
    "credit_transactions": (LEDGER_COLUMNS, ledger_rows),
    "reservation_history": (RESERVATION_COLUMNS, reservation_fact_rows),
}

# Before the journal exporter, the server appended these tables from in-memory buffers into
# `<table>/day=YYYY-MM-DD/part-*.parquet`. Those rows have no journal position; the views keep
# the ones the exporter has not written again (the journal may still hold them, or not).
_LEGACY_KEYS = {
    "events": ("customer_id", "idempotency_key", "accepted_at"),
    "credit_transactions": ("transaction_id",),
}
# A legacy event has no journal position. A legacy ledger row's `sequence` was (journal
# position x 10,000 + its index among the record's credit transactions, from 1), which gives
# its place in the journal order.
# OPS-D5, as `domain.cost.cost_known` decides it: derived from what every stored event has,
# so events exported before the column existed answer too.
COST_KNOWN = "(cost_amount IS NOT NULL OR model IS NULL)"

_LEGACY_COLUMNS = {
    "events": {
        "journal_position": "CAST(NULL AS BIGINT)",
        "fact_index": "CAST(NULL AS BIGINT)",
        "cost_known": COST_KNOWN,
        **{name: "CAST(NULL AS VARCHAR)" for name in EVENT_COLUMNS[-7:]},  # no CloudEvents then
    },
    "credit_transactions": {
        "journal_position": "CAST(sequence // 10000 AS BIGINT)",
        "fact_index": "CAST(sequence % 10000 AS BIGINT)",
    },
}


def parquet_source(patterns: Sequence[Path]) -> str:
    """`read_parquet` over the union of the files `patterns` match (every shard's, SCL-74)."""
    # DDL takes no parameters: each path is quoted
    literals = ", ".join("'" + str(p.resolve()).replace("'", "''") + "'" for p in patterns)
    return f"read_parquet([{literals}], union_by_name = true, hive_partitioning = false)"


def history_view(root: Path | Sequence[Path], table: str) -> str:
    """The `CREATE VIEW` statement of a journal-derived history table stored under `root`
    (`<data-dir>/history/<table>`; one per shard over the union of their files, SCL-74),
    each of which must hold at least its `schema.parquet`."""
    roots = [root] if isinstance(root, Path) else list(root)
    exported = f"SELECT * FROM {parquet_source([r / '*.parquet' for r in roots])}"  # noqa: S608
    if table == "reservation_history":  # no legacy files: it came after the exporter
        return f"CREATE VIEW {table} AS {reservation_view_query(exported)}"
    columns = ["environment", *JOURNAL_HISTORIES[table][0]]
    selected = [f"h.{name}" for name in columns]
    if table == "events":
        selected.insert(selected.index("h.customer_id") + 1, "c.external_id")
        selected.insert(selected.index("h.cost_amount") + 1, f"{COST_KNOWN} AS cost_known")
        joined = "h LEFT JOIN customers c USING (environment, customer_id)"
    else:
        joined = "h"
    # The SQL is built from our own column names and a quoted path only (DDL takes no
    # parameters), hence the S608 waivers.
    query = f"WITH h AS ({exported}) SELECT {', '.join(selected)} FROM {joined}"  # noqa: S608
    legacy = [r / "day=*" / "part-*.parquet" for r in roots if any(r.glob("day=*/part-*.parquet"))]
    if legacy:  # only then: the anti-join costs every query
        names = [*columns, "external_id", "cost_known"] if table == "events" else columns
        kept = [_LEGACY_COLUMNS[table].get(name, name) + f" AS {name}" for name in names]
        keys = ("environment", *_LEGACY_KEYS[table])
        match = " AND ".join(f"n.{key} = l.{key}" for key in keys)
        query += (
            f" UNION ALL BY NAME SELECT {', '.join(kept)}"  # noqa: S608
            f" FROM {parquet_source(legacy)} l"
            f" WHERE NOT EXISTS (SELECT 1 FROM ({exported}) n WHERE {match})"
        )
    return f"CREATE VIEW {table} AS {query}"
