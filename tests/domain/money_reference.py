"""A plain money reference for the customer state machine (issue 12, item 8).

It keeps a list of what happened to one customer (usage events, credit grants, plan changes,
payments) and bills it by brute force, without any of the engine's code:

- a period's usage charge is recomputed from the raw event list at every finalisation, as the
  rounded charge of everything the period has billed so far minus the rounded charge of what
  it had billed at the previous finalisation, on the ladder of the plan that closed the period
  (MNY-B1, MNY-B2); events dated before the subscription start belong to its first period
  (MNY-B6);
- a pool is a FIFO list of grants, and the credits chat has debited are the rounded sum of
  what every covered event owed since the last reset, never per event (MNY-B3, MNY-B5);
- a period's plan allocation is the largest allocation of any plan in force during it (MNY-A1);
- a split amount is only ever compared as its whole: the rounded sum of its exact parts
  (MNY-B4 makes the parts sum to it).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
CENT = Decimal("0.01")
FEATURES = ("calls", "gb", "chat")
CHAT_PRICE = Decimal("0.00002")  # every plan's price of an uncovered chat unit


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, ROUND_HALF_UP)


def credits(amount: Decimal) -> Decimal:
    """CRD-30, INV-43: credits keep 4 decimals."""
    return amount.quantize(Decimal("0.0001"), ROUND_HALF_UP)


def usage_units(amount: Decimal) -> Decimal:
    """INV-43: usage keeps 6 decimals."""
    return amount.quantize(Decimal("0.000001"), ROUND_HALF_UP)


Tier = tuple[Decimal | None, Decimal, Decimal]  # (up to, price per unit, flat fee)


@dataclass(frozen=True)
class RefPlan:
    key: str
    price: Decimal
    allocation: Decimal  # TOKENS per period (0: the plan allocates none)
    calls_price: Decimal
    gb_tiers: tuple[Tier, ...]
    in_arrears: bool = False

    def charge(self, feature: str, quantity: Decimal) -> Decimal:
        """One period's unrounded charge for `quantity` units (INV-32, INV-33)."""
        if feature == "calls":
            return quantity * self.calls_price
        if feature == "chat":
            return quantity * CHAT_PRICE
        total, lower = ZERO, ZERO
        for up_to, price, flat in self.gb_tiers:
            inside = min(quantity, up_to if up_to is not None else quantity) - lower
            if inside > 0:
                total += inside * price + flat
            lower = up_to if up_to is not None else lower
        return total


@dataclass
class RefInvoice:
    type: str  # INITIAL, RENEWAL, ADJUSTMENT
    period_start: datetime
    amount: Decimal


@dataclass
class RefGrant:
    remaining: Decimal
    subscription: int | None  # None: a purchase


@dataclass(frozen=True)
class RefEvent:
    at: datetime  # occurredAt
    subscription: int
    feature: str
    units: Decimal  # the billable units


@dataclass
class RefSubscription:
    number: int
    plan: str
    first_start: datetime
    starts: list[datetime]  # every period opened so far, oldest first
    allocated: Decimal = ZERO  # what this period's plan allocation has granted
    downgrade_to: str | None = None
    ending: bool = False  # an END_OF_PERIOD cancellation is scheduled
    live: bool = True
    in_force: list[str] = field(default_factory=list)  # plans in force this period
    segments: list[tuple[str, datetime]] = field(default_factory=list)  # (plan, from)
    billed_through: int = 0  # events[:billed_through] were there at the last finalisation
    pending: int | None = None  # the index of an in-arrears period's PENDING invoice

    @property
    def period_start(self) -> datetime:
        return self.starts[-1]

    @property
    def period_end(self) -> datetime:
        return months_after(self.first_start, len(self.starts))

    def bucket(self, at: datetime) -> datetime:
        """The period an event dated `at` is billed in; before the start, the first (MNY-B6)."""
        return max((p for p in self.starts if p <= at), default=self.first_start)


def months_after(first: datetime, months: int) -> datetime:
    """The grid of a subscription: its first day's date, `months` later, clamped to month end."""
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    day = min(first.day, calendar.monthrange(year, month + 1)[1])
    return first.replace(year=year, month=month + 1, day=day)


_MS = datetime(2000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(2000, 1, 1, tzinfo=UTC)


def unused_ratio(start: datetime, end: datetime, at: datetime) -> Decimal:
    """INV-50: the unused share of [start, end) at `at`, in milliseconds, to 8 places."""
    whole = Decimal((end - start) // _MS)
    return (Decimal((end - at) // _MS) / whole).quantize(Decimal("1e-8"), ROUND_HALF_UP)


class MoneyReference:
    """One customer, billed by brute force. Payments are prompt (the machine pays every payable
    invoice after every step), so an in-advance period's allocation is granted at its start."""

    def __init__(self, plans: dict[str, RefPlan], credits_per_unit: Decimal) -> None:
        self.plans = plans
        self.rate = credits_per_unit
        self.subscription: RefSubscription | None = None
        self.numbers = 0
        self.invoices: list[RefInvoice] = []
        self.grants: list[RefGrant] = []
        self.events: list[RefEvent] = []
        self.closing_plans: dict[tuple[int, datetime], str] = {}  # the plan at each period end
        self.chat_owed = ZERO  # the exact credits covered chat events owed since the last reset
        self.chat_debited = ZERO  # what they were debited: chat_owed rounded, cumulatively

    @property
    def balance(self) -> Decimal:
        return sum((g.remaining for g in self.grants), ZERO)

    def subscribe(self, plan: str, now: datetime) -> None:
        self.numbers += 1
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sub = RefSubscription(self.numbers, plan, start, [start], in_force=[plan])
        sub.segments = [(plan, start)]
        self.subscription = sub
        self._open_invoice(sub, "INITIAL")
        self._allocate(sub)

    def _open_invoice(self, sub: RefSubscription, type_: str, usage: Decimal = ZERO) -> None:
        """The period's invoice: in advance, its base and the closing period's usage; in
        arrears, PENDING with its base until the period end finalises it."""
        plan = self.plans[sub.plan]
        if plan.in_arrears:
            sub.pending = len(self.invoices)
        self.invoices.append(RefInvoice(type_, sub.period_start, cents(plan.price) + usage))

    def _allocate(self, sub: RefSubscription) -> None:
        """MNY-A1: the period's allocation tops up to the largest of the plans in force."""
        target = max(self.plans[p].allocation for p in sub.in_force)
        if target > sub.allocated:
            self.grants.append(RefGrant(target - sub.allocated, sub.number))
            sub.allocated = target

    def purchase(self, amount: Decimal) -> None:
        self.grants.append(RefGrant(amount, None))

    def _consume(self, amount: Decimal) -> None:
        """A debit of at most the balance, oldest grant first (no grant here ever expires)."""
        for grant in self.grants:
            take = min(amount, grant.remaining)
            grant.remaining -= take
            amount -= take
        self.grants = [g for g in self.grants if g.remaining > 0]

    def use(self, feature: str, units: Decimal, at: datetime) -> None:
        """A metered event that is not credit-backed: every unit is billable."""
        assert self.subscription is not None
        self.events.append(RefEvent(at, self.subscription.number, feature, units))

    def use_chat(self, units: Decimal, at: datetime) -> bool:
        """A chat event on the hard-limited TOKENS pool; returns whether it is flagged.

        MNY-B3: the covered events' debits are cumulatively round(Σ units × rate), so this
        event's debit is that rounding now minus what was debited before. MNY-B5: when the
        pool cannot pay it, the event is flagged and billed in units: all of them when nothing
        was drawn and nothing was paid ahead, else what the draw did not cover (and the
        cumulative sums restart)."""
        assert self.subscription is not None
        exact = units * self.rate
        if exact <= 0:
            return False
        carried = self.chat_owed - self.chat_debited
        requested = credits(self.chat_owed + exact) - self.chat_debited
        covered = min(requested, self.balance)
        if carried + exact <= 0 or (covered == requested and (covered > 0 or self.balance > 0)):
            self._consume(covered)
            self.chat_owed += exact
            self.chat_debited += covered
            return False
        if covered == 0 and carried >= 0:
            billable = units
        else:
            self._consume(covered)
            billable = usage_units((carried + exact - covered) / self.rate)
            self.chat_owed = self.chat_debited = ZERO
        self.events.append(RefEvent(at, self.subscription.number, "chat", billable))
        return True

    def upgrade(self, target: str, now: datetime) -> None:
        sub = self.subscription
        assert sub is not None
        old, new = self.plans[sub.plan], self.plans[target]
        sub.downgrade_to = None  # SUB-64: an upgrade cancels a pending downgrade
        sub.plan = target
        sub.in_force.append(target)
        sub.segments.append((target, now))
        if not old.in_arrears:
            # INV-51 as MNY-B4 allocates it: credit and charge sum to round(r × (new − old))
            ratio = unused_ratio(sub.period_start, sub.period_end, now)
            net = cents(ratio * (new.price - old.price))
            if net > 0:  # AMB-13: a cheaper upgrade forfeits the difference
                self.invoices.append(RefInvoice("ADJUSTMENT", now, net))
        self._allocate(sub)

    def advance(self, now: datetime) -> None:
        """Every period end up to `now`, in order (SUB-30, SUB-44)."""
        while (sub := self.subscription) is not None and sub.live and sub.period_end <= now:
            self._end_period(sub)

    def _end_period(self, sub: RefSubscription) -> None:
        self.closing_plans[(sub.number, sub.period_start)] = sub.plan
        if sub.pending is not None:  # in arrears: finalised with its base and usage
            pending = self.invoices[sub.pending]
            pending.amount = self._base(sub) + self._usage_charge(sub)
            sub.pending = None
        if sub.ending:  # CRD-43: the subscription's plan credits are clawed back
            sub.live = False
            for grant in self.grants:
                if grant.subscription == sub.number:
                    grant.remaining = ZERO
            self.grants = [g for g in self.grants if g.remaining > 0]
            return  # in advance, the last period's usage has no invoice to go on (SUB-44)
        usage = ZERO if self.plans[sub.plan].in_arrears else self._usage_charge(sub)
        if sub.downgrade_to is not None:
            sub.plan, sub.downgrade_to = sub.downgrade_to, None
        sub.starts.append(sub.period_end)
        sub.in_force = [sub.plan]
        sub.segments = [(sub.plan, sub.period_start)]
        sub.allocated = ZERO
        self._open_invoice(sub, "RENEWAL", usage)
        self._allocate(sub)

    def _base(self, sub: RefSubscription) -> Decimal:
        """An in-arrears period's base: its price, or after upgrades the rounded sum of each
        plan's exact share of the period (INV-52; MNY-B4 makes the lines sum to it)."""
        start, end = sub.period_start, sub.period_end
        if len(sub.segments) == 1:
            return cents(self.plans[sub.plan].price)
        ends = [s for _, s in sub.segments[1:]] + [end]
        exact = sum(
            (
                (unused_ratio(start, end, begin) - unused_ratio(start, end, until))
                * self.plans[plan].price
                for (plan, begin), until in zip(sub.segments, ends, strict=True)
            ),
            ZERO,
        )
        return cents(exact)

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
        """What this finalisation bills: for every period and feature, the rounded charge of
        all the units the period has now, minus that of the units it had at the previous
        finalisation, on the ladder of the plan that closed the period (MNY-B1, MNY-B2)."""
        before, now = sub.billed_through, len(self.events)
        sub.billed_through = now
        total = ZERO
        for start in sub.starts:
            plan = self.plans[self.closing_plans[(sub.number, start)]]
            for feature in FEATURES:
                total += cents(plan.charge(feature, self._units(sub, start, feature, now)))
                total -= cents(plan.charge(feature, self._units(sub, start, feature, before)))
        return total

    def _units(self, sub: RefSubscription, start: datetime, feature: str, count: int) -> Decimal:
        """The billable units of `feature` in the period starting at `start` among the first
        `count` events."""
        return sum(
            (
                e.units
                for e in self.events[:count]
                if e.subscription == sub.number and e.feature == feature
                and sub.bucket(e.at) == start
            ),
            ZERO,
        )  # fmt: skip
