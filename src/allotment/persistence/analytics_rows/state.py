"""`StateRows`: the customer-state tables of one analytics snapshot."""

from __future__ import annotations

from allotment.domain.catalog import Catalog
from allotment.domain.state import CustomerState
from allotment.persistence.analytics_rows.credit_notes import (
    CreditNoteLineRow,
    CreditNoteRow,
    credit_note_rows,
)
from allotment.persistence.analytics_rows.credits import (
    CreditGrantRow,
    CreditPoolRow,
    credit_rows,
)
from allotment.persistence.analytics_rows.customers import (
    CustomerRow,
    SubscriptionRow,
    UsageCounterRow,
    customer_rows,
)
from allotment.persistence.analytics_rows.entitlements import (
    EntitlementRow,
    GrantRow,
    entitlement_rows,
)
from allotment.persistence.analytics_rows.invoices import InvoiceItemRow, InvoiceRow, invoice_rows
from allotment.persistence.analytics_rows.payments import (
    UnappliedPaymentRow,
    customer_payment_rows,
)
from allotment.persistence.analytics_rows.reservations import ReservationRow, reservation_rows
from allotment.persistence.analytics_rows.table import Columns, Row, Table

__all__ = ("StateRows",)

_ROWS: tuple[type[Row], ...] = (
    CustomerRow,
    SubscriptionRow,
    InvoiceRow,
    InvoiceItemRow,
    CreditNoteRow,
    CreditNoteLineRow,
    UsageCounterRow,
    CreditPoolRow,
    CreditGrantRow,
    UnappliedPaymentRow,
    ReservationRow,
    EntitlementRow,
    GrantRow,
)


class StateRows:
    """The customer-state tables of one analytics snapshot, filled one customer at a time."""

    def __init__(self) -> None:
        self._tables = {row: Table(row) for row in _ROWS}
        self.tables: dict[str, Columns] = {
            row.table: table.columns for row, table in self._tables.items()
        }

    def add(self, state: CustomerState, catalog: Catalog) -> None:
        """Add the rows of one customer's state to every table."""
        tables = self._tables
        for rows in (
            customer_rows(state, catalog),
            invoice_rows(state),
            credit_note_rows(state),
            credit_rows(state),
            customer_payment_rows(state),
            reservation_rows(state),
            entitlement_rows(state, catalog),
        ):
            for row in rows:
                tables[type(row)].add(row)
