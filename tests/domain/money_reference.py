"""A plain money reference for the customer state machine (issue 12, item 8).

It keeps a list of what happened to one customer (usage events, credit grants, plan changes,
payments) and bills it by brute force, without any of the engine's code: a period is billed
from the events whose instant falls in it, a pool is a FIFO list of grants, and a period's
plan allocation is, by MNY-A1, the largest allocation of any plan in force during that period.

The workload it accepts is the one that is correct on this branch; the knobs the lead widens
once the other parts of issue 12 are merged are the module constants of the machine
(tests/domain/test_customer_machine.py), not this file's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class RefPlan:
    key: str
    price: Decimal
    allocation: Decimal  # TOKENS per period (0: the plan allocates none)
    calls_price: Decimal
    in_arrears: bool = False


@dataclass(frozen=True)
class RefInvoice:
    type: str  # INITIAL, RENEWAL, ADJUSTMENT
    period_start: datetime
    amount: Decimal


@dataclass
class RefGrant:
    amount: Decimal
    remaining: Decimal
    subscription: int | None  # None: a purchase


@dataclass
class RefSubscription:
    number: int
    plan: str
    period_start: datetime
    period_end: datetime
    allocated: Decimal = ZERO  # what this period's plan allocation has granted
    downgrade_to: str | None = None
    ending: bool = False  # an END_OF_PERIOD cancellation is scheduled
    live: bool = True
    in_force: list[str] = field(default_factory=list)  # plans in force this period


def month_after(instant: datetime) -> datetime:
    """The period grid of a subscription started on the 15th: the 15th of the next month."""
    year, month = divmod(instant.year * 12 + instant.month, 12)
    return instant.replace(year=year, month=month + 1)


def unused_ratio(start: datetime, end: datetime, at: datetime) -> Decimal:
    whole = Decimal((end - start) // _MS)
    return (Decimal((end - at) // _MS) / whole).quantize(Decimal("1e-8"), ROUND_HALF_UP)


_MS = datetime(2000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(2000, 1, 1, tzinfo=UTC)


class MoneyReference:
    """One customer, billed by brute force. Payments are prompt (the machine pays every payable
    invoice after every step), so an in-advance period's allocation is granted at its start."""

    def __init__(self, plans: dict[str, RefPlan]) -> None:
        self.plans = plans
        self.subscription: RefSubscription | None = None
        self.numbers = 0
        self.invoices: list[RefInvoice] = []
        self.grants: list[RefGrant] = []
        self.events: list[tuple[datetime, int, str, Decimal]] = []  # (at, sub, feature, units)
        self.billed = 0  # events[:billed] were recorded before the last period end: billed
        self.closing_plans: dict[tuple[int, datetime], str] = {}  # the plan at each period end

    @property
    def balance(self) -> Decimal:
        return sum((g.remaining for g in self.grants), ZERO)

    def subscribe(self, plan: str, now: datetime) -> None:
        self.numbers += 1
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sub = RefSubscription(self.numbers, plan, start, month_after(start), in_force=[plan])
        self.subscription = sub
        self.invoices.append(RefInvoice("INITIAL", start, cents(self.plans[plan].price)))
        self._allocate(sub)

    def _allocate(self, sub: RefSubscription) -> None:
        """MNY-A1: the period's allocation tops up to the largest of the plans in force."""
        target = max(self.plans[p].allocation for p in sub.in_force)
        if target > sub.allocated:
            self.grants.append(RefGrant(target - sub.allocated, target - sub.allocated, sub.number))
            sub.allocated = target

    def purchase(self, amount: Decimal) -> None:
        self.grants.append(RefGrant(amount, amount, None))

    def consume(self, credits: Decimal) -> None:
        """A debit the balance covers, oldest grant first (all grants here never expire)."""
        left = credits
        for grant in self.grants:
            take = min(left, grant.remaining)
            grant.remaining -= take
            left -= take
        assert left == 0, "the machine only spends credits the reference says are there"
        self.grants = [g for g in self.grants if g.remaining > 0]

    def use_calls(self, units: Decimal, now: datetime) -> None:
        assert self.subscription is not None
        self.events.append((now, self.subscription.number, "calls", units))

    def upgrade(self, target: str, now: datetime) -> None:
        sub = self.subscription
        assert sub is not None
        old, new = self.plans[sub.plan], self.plans[target]
        sub.downgrade_to = None  # SUB-64: an upgrade cancels a pending downgrade
        sub.plan = target
        sub.in_force.append(target)
        if not old.in_arrears:
            ratio = unused_ratio(sub.period_start, sub.period_end, now)
            net = cents(ratio * new.price) - cents(ratio * old.price)
            if net > 0:  # INV-51, AMB-13: a cheaper upgrade forfeits the difference
                self.invoices.append(RefInvoice("ADJUSTMENT", now, net))
        self._allocate(sub)

    def advance(self, now: datetime) -> None:
        """Every period end up to `now`, in order (SUB-30, SUB-44)."""
        while (sub := self.subscription) is not None and sub.live and sub.period_end <= now:
            self._end_period(sub)

    def _end_period(self, sub: RefSubscription) -> None:
        self.closing_plans[(sub.number, sub.period_start)] = sub.plan
        usage = self._usage_charge(sub)
        if sub.ending:  # CRD-43: the subscription's plan credits are clawed back
            sub.live = False
            for grant in self.grants:
                if grant.subscription == sub.number:
                    grant.remaining = ZERO
            self.grants = [g for g in self.grants if g.remaining > 0]
            return
        if sub.downgrade_to is not None:
            sub.plan, sub.downgrade_to = sub.downgrade_to, None
        sub.period_start, sub.period_end = sub.period_end, month_after(sub.period_end)
        sub.in_force = [sub.plan]
        sub.allocated = ZERO
        self.invoices.append(
            RefInvoice("RENEWAL", sub.period_start, cents(self.plans[sub.plan].price) + usage)
        )
        self._allocate(sub)

    def schedule_downgrade(self, target: str | None) -> None:
        """SUB-62 (a new downgrade replaces a pending one) and SUB-70 (None cancels it)."""
        assert self.subscription is not None
        self.subscription.downgrade_to = target

    def set_ending(self, ending: bool) -> None:
        """SUB-42 (which cancels a pending downgrade, SUB-43) and SUB-50."""
        assert self.subscription is not None
        self.subscription.ending = ending
        if ending:
            self.subscription.downgrade_to = None

    def _usage_charge(self, sub: RefSubscription) -> Decimal:
        """The calls not yet billed, each period's quantity priced on the plan in force at that
        period's end and rounded to the cent on its own (one line per period, issue 12 item 2).
        With LATE_DAYS = 0 every unbilled call falls in the closing period."""
        quantities: dict[datetime, Decimal] = {}
        for at, number, feature, units in self.events[self.billed :]:
            if number == sub.number and feature == "calls":
                start = max(p for n, p in self.closing_plans if n == number and p <= at)
                quantities[start] = quantities.get(start, ZERO) + units
        self.billed = len(self.events)
        return sum(
            (
                cents(q * self.plans[self.closing_plans[(sub.number, p)]].calls_price)
                for p, q in quantities.items()
            ),
            ZERO,
        )
