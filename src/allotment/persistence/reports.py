"""What storage and analytics report of their work: logged as JSON lines, returned to the
admin API and to tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

__all__ = (
    "AnalyticsReport",
    "CheckpointReport",
    "CustomerEvent",
    "ExportReport",
    "InvoiceListing",
    "InvoicePage",
    "InvoiceQuery",
    "RecoveryReport",
    "SnapshotOverview",
)


class SnapshotOverview(msgspec.Struct, frozen=True, kw_only=True):
    """The console's overview figures from the analytics snapshot taken at `taken_at` (the
    server clock then) and the histories exported by the time of the read (issue 20)."""

    taken_at: datetime
    active_by_plan: dict[str, int]  # plan key -> subscriptions with ACTIVE access
    mrr_by_currency: dict[str, Decimal]  # price per month of those subscriptions' plans
    receivables: dict[str, dict[int, Decimal]]  # currency -> days past due -> remaining
    events_per_minute: dict[datetime, int]  # minute start -> events accepted then
    burn_per_day: dict[str, dict[date, Decimal]]  # denomination -> UTC day -> DEBITs, gross


class InvoiceQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Invoices of some statuses (none: every status) created in [created_from,
    created_before), newest first (ties by invoice id, descending), one page of them."""

    statuses: tuple[str, ...] = ()
    created_from: datetime | None = None
    created_before: datetime | None = None
    limit: int = 50
    offset: int = 0


class InvoiceListing(msgspec.Struct, frozen=True, kw_only=True):
    invoice_id: str
    customer_id: str
    external_id: str | None
    invoice_type: str
    status: str
    amount: Decimal
    currency: str
    due_date: datetime
    created_at: datetime


class InvoicePage(msgspec.Struct, frozen=True, kw_only=True):
    taken_at: datetime  # the analytics snapshot's time (the server clock then)
    total: int  # every invoice matching, across pages
    rows: list[InvoiceListing]


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    snapshot_position: int
    records_replayed: int
    customers: int
    seconds: float


class CheckpointReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    position: int
    customers: int
    bytes: int
    seconds: float
    segments_deleted: int


class ExportReport(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    position: int  # every record up to here is in every history table's files
    events: int  # rows written by this export
    credit_transactions: int
    reservation_history: int = 0  # a default: reports of servers from before it still decode
    files: int


class AnalyticsReport(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    path: str
    taken_at: str
    customers: int
    history_rows: int  # audit records written and rows exported from the journal
    # environment -> journal position exported to the history (over shards: the sum of each
    # shard's position, as each numbers its own records, SCL-75)
    exported: dict[str, int]
    seconds: float
    tables: dict[str, int] = {}  # over shards: rows of each table and view merged (SCL-75)


class CustomerEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted usage event (`name` its event name, `key` its idempotency key, the units it
    counted toward `feature`), or a CloudEvent (`name` its type, `key` its id, `source`)."""

    journal_position: int
    fact_index: int
    occurred_at: datetime
    accepted_at: datetime
    name: str
    key: str
    feature: str | None = None
    units: Decimal | None = None
    source: str | None = None
