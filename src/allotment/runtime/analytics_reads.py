"""The console's reads of the analytics snapshot (issue 20, docs/console.md CON-41, CON-47).

Figures over every customer (subscriptions by plan, MRR, receivables, the invoice list) and
the histories customer state does not keep (events per minute, credit burn per day) are read
from `analytics.duckdb`, the complete database the analytics worker writes off the event loop
and swaps in atomically, and from the journal's Parquet projections it views. Reading them
costs a DuckDB query on a worker thread, never a customer's turn; the answer is as fresh as
the snapshot (every `analytics_every_s`, or `POST /api/v1/admin/snapshots`), and the console
prints that time. An adapter in persistence (`persistence/console_reads.py`) implements it;
wiring gives it to the system (`ActorSystem.analytics_reads`) when there is a data directory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from allotment.persistence.errors import HistoryUnavailable
from allotment.persistence.reports import (
    InvoiceListing,
    InvoicePage,
    InvoiceQuery,
    SnapshotOverview,
)

__all__ = (
    "AnalyticsReads",
    "HistoryUnavailable",
    "InvoiceListing",
    "InvoicePage",
    "InvoiceQuery",
    "SnapshotOverview",
)


class AnalyticsReads(Protocol):
    """Every method runs off the event loop and may raise `HistoryUnavailable` (no data
    directory, or no snapshot yet)."""

    async def overview(self, environment: str, now: datetime) -> SnapshotOverview:
        """The overview's figures: events per minute over (now - 1 h, now] and the credit
        burn per day over (now - 30 days, now] from the exported histories (`now` included:
        on a manual clock, what just happened happened at `now`), the rest from the
        snapshot."""
        ...

    async def invoices(self, environment: str, query: InvoiceQuery) -> InvoicePage:
        """One page of the snapshot's invoices matching `query`, newest first."""
        ...
