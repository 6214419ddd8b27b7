"""Invoice lines: base price (INV-35) and prorated base (INV-52); usage lines are
`usage_billing`'s (INV-30..INV-37).

Each line is rounded once to the currency (INV-41); an invoice's amount is the exact sum of
its lines (INV-36, INV-42).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from allotment.domain.catalog import Catalog
from allotment.domain.money import ZERO, allocate_money, round_money
from allotment.domain.proration import unused_ratio
from allotment.domain.state import (
    CustomerState,
    Invoice,
    InvoiceItem,
    InvoiceStatus,
    InvoiceType,
    Subscription,
)

__all__ = ("NewId", "base_lines", "current_period_invoice", "invoice", "line")

NewId = Callable[[], uuid.UUID]


def line(new_id: NewId, amount: Decimal, description: str, at: datetime) -> InvoiceItem:
    return InvoiceItem(id=new_id(), charge_amount=amount, description=description, created_at=at)


def invoice(
    new_id: NewId,
    sub: Subscription,
    *,
    type_: InvoiceType,
    status: InvoiceStatus,
    currency: str,
    due: datetime,
    period: tuple[datetime, datetime],
    items: Sequence[InvoiceItem],
    at: datetime,
    invoice_id: uuid.UUID | None = None,
    plan_id: uuid.UUID | None = None,
) -> Invoice:
    amount = sum((item.charge_amount for item in items), ZERO)
    return Invoice(
        id=invoice_id or new_id(),
        subscription_id=sub.id,
        type=type_,
        status=status,
        amount=amount,
        currency=currency,
        due_date=due,
        period_start=period[0],
        period_end=period[1],
        items=tuple(items),
        created_at=at,
        modified_at=at,
        plan_id=plan_id,
    )


def base_lines(
    sub: Subscription,
    catalog: Catalog,
    period: tuple[datetime, datetime],
    new_id: NewId,
    at: datetime,
) -> list[InvoiceItem]:
    """The period's base price. With one plan all period long: one line (omitted at 0, INV-35).
    After upgrades (in arrears), one prorated line per plan segment (INV-52): a segment's share
    is the unused ratio at its start minus the unused ratio at its end, and the lines are
    allocated so that they sum to the rounded prorated total (MNY-B4)."""
    start, end = period
    segments = sub.plan_segments or ()
    if len(segments) <= 1:
        plan = catalog.plans[sub.plan_id]
        price = round_money(plan.price_amount, plan.currency)
        return [line(new_id, price, f"Plan base price: {plan.name}", at)] if price > 0 else []
    plans = [catalog.plans[segment.plan_id] for segment in segments]
    exact = []
    for i, segment in enumerate(segments):
        segment_end = segments[i + 1].start if i + 1 < len(segments) else end
        share = unused_ratio(start, end, segment.start) - unused_ratio(start, end, segment_end)
        exact.append(share * plans[i].price_amount)
    # MNY-B4: the prorated lines sum to the rounded prorated total (SUB-61: one currency)
    amounts = allocate_money(exact, plans[-1].currency)
    return [
        line(new_id, amount, f"Plan base price: {plan.name} (prorated)", at)
        for plan, amount in zip(plans, amounts, strict=True)
        if amount > 0
    ]


def current_period_invoice(state: CustomerState, sub: Subscription) -> Invoice | None:
    """The INITIAL/RENEWAL invoice that bills the subscription's current period."""
    for candidate in reversed(state.invoices.values()):
        if (
            candidate.subscription_id == sub.id
            and candidate.type in (InvoiceType.INITIAL, InvoiceType.RENEWAL)
            and candidate.period_start == sub.current_period_start
        ):
            return candidate
    return None
