"""Rows for the analytics database, one declared schema per table.

Each table is a row struct (`table.Row`): its fields are the table's columns, in order, and the
module that declares it also builds its rows from the domain, so a column is named once, next
to the value that fills it. `StateRows` collects the customer-state tables one customer at a
time (the caller yields to the event loop between slices), `catalog_rows` the catalog tables,
and `audit_rows` the entitlement checks; `unapplied_payment_rows` the payments no customer owns
(customers' own are in `StateRows`). The journal-derived histories are `history_rows`'.
Column types for Arrow follow the column names (`analytics.to_arrow`).
"""

from allotment.persistence.analytics_rows.audits import audit_rows
from allotment.persistence.analytics_rows.catalog import catalog_rows
from allotment.persistence.analytics_rows.payments import unapplied_payment_rows
from allotment.persistence.analytics_rows.state import StateRows
from allotment.persistence.analytics_rows.table import Columns

__all__ = ("Columns", "StateRows", "audit_rows", "catalog_rows", "unapplied_payment_rows")
