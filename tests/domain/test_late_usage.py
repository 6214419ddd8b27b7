"""Late usage is priced in its own period, against a brute-force reference (MNY-B1, MNY-B2,
MNY-B6; fixes INV-30, INV-33 and AMB-23 for late and pre-start events).

Finalisation used to add up the unbilled usage of every earlier period and price the sum once,
so late units of a closed period were priced on the next period's tier ladder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.catalog import PriceTier
from allotment.domain.commands import EvaluateEntitlement, MarkInvoicePaid, RecordUsage, Subscribe
from allotment.domain.money import round_money
from allotment.domain.periods import add_months
from allotment.domain.pricing import graduated_charge
from allotment.domain.replies import UsageAccepted
from allotment.domain.state import Invoice, InvoiceStatus, InvoiceType
from tests.domain.harness import D, World, catalog_from, encoded, replay

TIERS = [
    {"upTo": 100, "pricePerUnit": 0.5, "flatFee": 5},
    {"upTo": 1000, "pricePerUnit": 0.25},
    {"upTo": "inf", "pricePerUnit": 0.1},
]  # the demo's storage_gb ladder
LADDER = (
    PriceTier(up_to=D(100), price_per_unit=D("0.5"), flat_fee=D(5)),
    PriceTier(up_to=D(1000), price_per_unit=D("0.25")),
    PriceTier(up_to=None, price_per_unit=D("0.1")),
)
CALL_PRICE = D("0.005")  # half a cent: every line rounds


def _world() -> World:
    """One subscriber to a free in-arrears plan with a graduated `gb` and a per-unit `calls`."""
    document = {
        "features": [{"key": "gb"}, {"key": "calls"}],
        "plans": [{
            "key": "metered", "name": "Metered", "priceAmount": 0, "currency": "USD",
            "intervalMonths": 1, "billingTiming": "IN_ARREARS",
            "features": [
                {"featureKey": "gb", "pricingType": "graduated", "tiers": TIERS,
                 "unitLabel": "GB"},
                {"featureKey": "calls", "pricingType": "usage_based", "pricePerUnit": 0.005},
            ],
        }],
    }  # fmt: skip
    world = World(catalog_from(document))
    world.run(Subscribe(plan_id=world.plan_id("metered")))
    return world


def _charge(feature: str, quantity: Decimal) -> Decimal:
    """C(Q) of one period, by the spec's formulas (INV-32, INV-33)."""
    if feature == "gb":
        return graduated_charge(LADDER, quantity)
    return quantity * CALL_PRICE


class _Subscriber:
    """The world, driven period by period, with every event it was sent."""

    def __init__(self) -> None:
        self.world = _world()
        (sub,) = self.world.state.subscriptions.values()
        self.first, self.anchor = sub.first_period_start, sub.billing_anchor_day
        self.closed = 0  # periods finalised so far; the current period's index
        self.events: list[tuple[int, str, Decimal, int]] = []  # (period, feature, units, closes)

    def start(self, period: int) -> datetime:
        return add_months(self.first, period, self.anchor)

    def use(self, feature: str, back: int, units: Decimal) -> None:
        """An event dated `back` periods before the current one; before the first period when
        that is before the subscription (MNY-B6: billed with the first period)."""
        period = self.closed - back
        at = self.start(period) + timedelta(hours=1) if period >= 0 else self.first - timedelta(1)
        reply = self.world.run(
            RecordUsage(
                idempotency_key=f"e{len(self.events)}",
                event_name=feature,
                feature_key=feature,
                occurred_at=at,
                units=units,
            )
        )
        assert isinstance(reply, UsageAccepted)
        self.events.append((max(period, 0), feature, units, self.closed))

    def close(self) -> Invoice:
        """End the current period; pay its invoice so the subscription stays ACTIVE."""
        self.world.now = self.start(self.closed + 1)
        self.world.run(EvaluateEntitlement(feature_key="gb"))
        finalised = self.invoice(self.closed)
        self.closed += 1
        if finalised.status is InvoiceStatus.DUE:
            self.world.run(MarkInvoicePaid(invoice_id=finalised.id))
        return finalised

    def invoice(self, period: int) -> Invoice:
        return next(
            i for i in self.world.state.invoices.values()
            if i.period_start == self.start(period)
            and i.type in (InvoiceType.INITIAL, InvoiceType.RENEWAL)
        )  # fmt: skip

    def arrived(self, period: int, feature: str, before_close: int) -> Decimal:
        """Units of `feature` dated in `period` that arrived before close number `before_close`."""
        return sum(
            (u for p, f, u, seen in self.events if p == period and f == feature
             and seen < before_close), D(0),
        )  # fmt: skip

    def billed(self, period: int, feature: str) -> Decimal:
        """What the invoices' lines billed for `feature` in `period`: its own finalisation's
        usage line, and the late lines naming it on later invoices."""
        late = f"Late usage for {feature} (period {self.start(period).date().isoformat()} "
        total = self.line(self.invoice(period), f"Usage for {feature}:")
        for close in range(period + 1, self.closed):
            total += self.line(self.invoice(close), late)
        return total

    @staticmethod
    def line(invoice: Invoice, prefix: str) -> Decimal:
        amounts = [i.charge_amount for i in invoice.items if i.description.startswith(prefix)]
        assert len(amounts) <= 1, invoice.items
        return sum(amounts, D(0))

    def expected(self, close: int) -> Decimal:
        """Brute force: what close number `close` bills is, for every period and feature, the
        rounded charge of all its units known at this close less that of those known at the
        previous one (MNY-B2), each period on its own ladder (MNY-B1)."""
        total = D(0)
        for period in range(close + 1):
            for feature in ("gb", "calls"):
                now = self.arrived(period, feature, close + 1)
                before = self.arrived(period, feature, close)
                total += round_money(_charge(feature, now), "USD") - round_money(
                    _charge(feature, before), "USD"
                )
        return total


def test_mny_b1_the_issue_case_late_january_gb_is_priced_on_januarys_ladder() -> None:
    """MNY-B1, INV-33, AMB-23: 100 GB reported late for January plus 100 GB in February bill
    55 + 55 = 110.00, on two lines, the late one naming January (it billed 80.00, merged)."""
    subscriber = _Subscriber()
    subscriber.close()  # January closes with no usage
    subscriber.use("gb", 1, D(100))  # late, for January
    subscriber.use("gb", 0, D(100))
    february = subscriber.close()
    assert february.amount == D(110)
    assert [(i.description, i.charge_amount) for i in february.items] == [
        ("Late usage for gb (period 2025-01-15 to 2025-02-15): 100 GB", D(55)),
        ("Usage for gb: 100 GB", D(55)),
    ]


def test_mny_b1_late_units_sit_on_top_of_what_their_period_already_billed() -> None:
    """MNY-B1: January billed 100 GB (55.00); 1 GB more for January, late, is priced at
    January's second tier: C(101) − C(100) = 0.25, not a fresh ladder's 5.50."""
    subscriber = _Subscriber()
    subscriber.use("gb", 0, D(100))
    assert subscriber.close().amount == D(55)
    subscriber.use("gb", 1, D(1))
    assert subscriber.close().amount == D("0.25")


def test_mny_b6_usage_dated_before_the_start_is_billed_with_the_first_period() -> None:
    """MNY-B6, INV-30, AMB-23, ENT-20: an event dated before the subscription started is
    billed by the first finalisation (it used to finalise at 0) and counts toward no limit."""
    subscriber = _Subscriber()
    subscriber.use("calls", 1, D(1000))
    (sub,) = subscriber.world.state.subscriptions.values()
    assert subscriber.world.state.usage[sub.id]["calls"].used.get(sub.current_period_start) == 0
    first = subscriber.close()
    assert (first.amount, first.status) == (D(5), InvoiceStatus.DUE)
    assert [i.description for i in first.items] == ["Usage for calls: 1000 units"]
    assert subscriber.close().amount == 0  # and no later invoice bills it again


operations = st.lists(
    st.one_of(
        st.tuples(st.just("gb"), st.integers(0, 3), st.decimals(D(0), D(400), places=2)),
        st.tuples(st.just("calls"), st.integers(0, 3), st.integers(1, 9).map(D)),
        st.tuples(st.just("close"), st.just(0), st.just(D(0))),
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(operations)
def test_mny_b1_b2_every_invoice_matches_the_brute_force_reference(
    ops: list[tuple[str, int, Decimal]],
) -> None:
    """MNY-B1, MNY-B2, MNY-B6, INV-30, INV-33, INV-41, INV-42: with events late by up to three
    periods (or before the start), each finalised invoice equals the reference to the cent, and
    everything a period billed over all invoices is round(C(all its units))."""
    subscriber = _Subscriber()
    for feature, back, units in [*ops, ("close", 0, D(0))]:
        if feature == "close":
            invoice = subscriber.close()
            assert invoice.amount == subscriber.expected(subscriber.closed - 1), invoice.items
            invariants.check(subscriber.world.state)
        elif units > 0:
            subscriber.use(feature, back, units)
    for period in range(subscriber.closed):
        for feature in ("gb", "calls"):
            whole = subscriber.arrived(period, feature, subscriber.closed)
            assert subscriber.billed(period, feature) == round_money(_charge(feature, whole), "USD")
    assert encoded(replay(subscriber.world.facts)) == encoded(subscriber.world.state)
