"""Where the overview's figures come from (CON-40..CON-44), and what each costs.

- Customers: `Shard.customer_count()`, live, O(1).
- Active subscriptions by plan, MRR by currency, receivables by age: the analytics snapshot
  (`ActorSystem.analytics_reads`, a DuckDB query on a worker thread; as fresh as the snapshot,
  whose time the page prints). Without a data directory there is no snapshot, and these come
  from one pass of `Shard.all_customers` instead: the port the OpenMeter customer listing uses,
  a listing without catch-up, so no customer's actor takes a turn for it (CON-41); it costs
  O(customers) on the event loop (about 0.25 s at 100k customers here), so a pass serves
  every render for `KEEP_S`.
- Events per minute over the last hour, credit burn per denomination over 30 days: the
  journal's exported histories through the same snapshot read; customer state keeps no
  per-event times, so without a data directory the page says there is no history.

Either answer is kept for `KEEP_S` of wall time while the server clock reads the same instant
(a manual clock that moved makes it stale: ages and windows changed) (CON-42).
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.credit_note_rules import invoice_totals
from allotment.domain.state import PAYABLE, AccessState, CustomerState
from allotment.runtime.analytics_reads import HistoryUnavailable, SnapshotOverview
from allotment.runtime.ports import Shard
from allotment.runtime.system import ActorSystem

__all__ = ("AGE_BUCKETS", "KEEP_S", "Figures", "figures_of", "forget", "scan_shard")

KEEP_S = 15.0
# Receivables by days past due: (label, first day, last day or None for open-ended).
AGE_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("not yet due", None, -1),
    ("0-30 days past due", 0, 30),
    ("31-60 days", 31, 60),
    ("61-90 days", 61, 90),
    ("over 90 days", 91, None),
)
_ZERO = Decimal(0)


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """The overview's figures other than the live customer count."""

    source: str  # "snapshot" or "scan"
    as_of: datetime  # the server clock when they were true
    active_by_plan: dict[str, int]
    mrr_by_currency: dict[str, Decimal]
    receivables: dict[str, dict[str, Decimal]]  # currency -> age bucket -> amount remaining
    events_per_minute: dict[datetime, int] | None  # None: no history to read
    burn_per_day: dict[str, dict[date, Decimal]] | None
    no_history: str | None = None  # why there is no history, when there is none
    cost_ms: float = 0.0  # what producing them cost


def age_bucket(days_past_due: int) -> str:
    for label, first, last in AGE_BUCKETS:
        if (first is None or days_past_due >= first) and (last is None or days_past_due <= last):
            return label
    raise AssertionError(days_past_due)  # the buckets cover every integer


def _bucketed(by_days: dict[str, dict[int, Decimal]]) -> dict[str, dict[str, Decimal]]:
    found: dict[str, dict[str, Decimal]] = {}
    for currency, amounts in sorted(by_days.items()):
        buckets = found.setdefault(currency, {})
        for days, amount in amounts.items():
            label = age_bucket(days)
            buckets[label] = buckets.get(label, _ZERO) + amount
    return found


class _Tally:
    """One customer at a time; the projector returns None, so the pass keeps nothing per
    customer but a None in the port's list."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.active: Counter[uuid.UUID] = Counter()
        self.receivables: dict[str, dict[int, Decimal]] = {}

    def add(self, state: CustomerState, _catalog: Catalog, _now: datetime) -> None:
        for sub in state.subscriptions.values():
            if sub.access is AccessState.ACTIVE:
                self.active[sub.plan_id] += 1
        for invoice in state.invoices.values():
            if invoice.status in PAYABLE:
                remaining = invoice_totals(state, invoice).amount_remaining
                if remaining > _ZERO:
                    days = (self.now - invoice.due_date) // timedelta(days=1)
                    by_days = self.receivables.setdefault(invoice.currency, {})
                    by_days[days] = by_days.get(days, _ZERO) + remaining


async def scan_shard(shard: Shard, now: datetime) -> Figures:
    """The state figures from one pass over the shard's customers (no turn taken, CON-41)."""
    started = time.perf_counter()
    tally = _Tally(now)
    await shard.all_customers(tally.add)
    by_plan: dict[str, int] = {}
    mrr: dict[str, Decimal] = {}
    plans = shard.catalog.plans
    for plan_id, count in tally.active.items():
        plan = plans.get(plan_id)
        key = plan.key if plan is not None else f"(removed plan {plan_id})"
        by_plan[key] = by_plan.get(key, 0) + count
        if plan is not None and plan.interval_months > 0:  # 1/n of its price a month
            mrr[plan.currency] = mrr.get(plan.currency, _ZERO) + (
                plan.price_amount * count / plan.interval_months
            )
    return Figures(
        source="scan", as_of=now, active_by_plan=dict(sorted(by_plan.items())),
        mrr_by_currency=dict(sorted(mrr.items())), receivables=_bucketed(tally.receivables),
        events_per_minute=None, burn_per_day=None,
        no_history="this server keeps no data directory, so there is no history to chart",
        cost_ms=(time.perf_counter() - started) * 1000,
    )  # fmt: skip


def _from_snapshot(snapshot: SnapshotOverview, cost_ms: float) -> Figures:
    return Figures(
        source="snapshot", as_of=snapshot.taken_at, active_by_plan=snapshot.active_by_plan,
        mrr_by_currency=snapshot.mrr_by_currency,
        receivables=_bucketed(snapshot.receivables),
        events_per_minute=snapshot.events_per_minute,
        burn_per_day=snapshot.burn_per_day,
        cost_ms=cost_ms,
    )  # fmt: skip


async def _produce(system: ActorSystem, environment: str, now: datetime) -> Figures:
    reads = system.analytics_reads
    if reads is not None:
        started = time.perf_counter()
        try:
            snapshot = await reads.overview(environment, now)
        except HistoryUnavailable as missing:  # no snapshot yet: the scan, and say why
            scanned = await scan_shard(system.route(environment), now)
            return msgspec.structs.replace(scanned, no_history=str(missing))
        return _from_snapshot(snapshot, (time.perf_counter() - started) * 1000)
    return await scan_shard(system.route(environment), now)


_KEPT: weakref.WeakKeyDictionary[ActorSystem, dict[str, tuple[float, datetime, Figures]]] = (
    weakref.WeakKeyDictionary()
)  # per system, as a system's lifetime bounds its figures


async def figures_of(system: ActorSystem, environment: str) -> Figures:
    """The figures, kept for `KEEP_S` while the server clock reads the same (CON-42)."""
    now = system.clock.now()
    kept = _KEPT.setdefault(system, {})
    found = kept.get(environment)
    if found is not None:
        at, clock_then, figures = found
        if time.monotonic() - at < KEEP_S and (not system.clock.manual or clock_then == now):
            return figures
    figures = await _produce(system, environment, now)
    kept[environment] = (time.monotonic(), now, figures)
    return figures


def forget(system: ActorSystem, environment: str) -> None:
    """Drop the kept figures (a snapshot was just taken: the next render reads it)."""
    _KEPT.get(system, {}).pop(environment, None)
