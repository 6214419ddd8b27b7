"""A pre-flight's estimated charges equal, to the minor unit, what the invoice then bills for
those units (RSV-30..RSV-35; built on INV-30..INV-34, INV-41, MNY-B1..MNY-B4, CRD-30).

The reference is the engine itself driven the long way: the items recorded as events, the
period closed by the clock, the invoice's usage lines read back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allotment.domain.commands import (
    CancelSubscription,
    EvaluateEntitlement,
    GrantCredits,
    HoldItem,
    MarkInvoicePaid,
    Preflight,
    RecordUsage,
    Reserve,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.estimate import estimate_charges
from allotment.domain.preflight_replies import ChargeEstimate, Preflighted
from allotment.domain.replies import Committed, UsageAccepted
from allotment.domain.reservation_replies import Reserved
from allotment.domain.state import CancelMode, InvoiceStatus
from tests.domain.harness import D, World, catalog_from, encoded
from tests.domain.reservation_world import commit

TIERS = [
    {"upTo": 100, "pricePerUnit": "0.5", "flatFee": 5},
    {"upTo": 1000, "pricePerUnit": "0.25"},
    {"upTo": "inf", "pricePerUnit": "0.1"},
]


@dataclass(frozen=True)
class Shape:
    """A plan: `calls` priced per unit, `gb` on a graduated ladder, `seats` included; `calls`
    optionally credit-backed."""

    currency: str = "USD"
    call_price: str = "0.005"
    gb_mode: str = "reset"
    timing: str = "IN_ARREARS"
    credit_rate: str | None = None  # TOKENS per call (and per GB when `gb_credits`)
    gb_credits: bool = False
    hard_limit: bool = True
    grant: str = "0.7"  # TOKENS granted at the start, when credit-backed


def _document(shape: Shape) -> dict[str, Any]:
    calls: dict[str, Any] = {
        "featureKey": "calls", "pricingType": "usage_based", "pricePerUnit": shape.call_price,
    }  # fmt: skip
    gb: dict[str, Any] = {"featureKey": "gb", "pricingType": "graduated", "tiers": TIERS,
                          "resetMode": shape.gb_mode}  # fmt: skip
    if shape.credit_rate is not None:
        credits = {"creditModelKey": "tok", "creditsPerUnit": shape.credit_rate}
        calls |= credits
        if shape.gb_credits:
            gb |= credits
    seats = {"featureKey": "seats", "pricingType": "included"}
    return {
        "features": [{"key": "calls"}, {"key": "gb"}, {"key": "seats"}],
        "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": shape.hard_limit}],
        "plans": [{
            "key": "metered", "name": "Metered", "priceAmount": 0, "currency": shape.currency,
            "intervalMonths": 1, "billingTiming": shape.timing, "features": [calls, gb, seats],
        }],
    }  # fmt: skip


class Customer:
    """One subscriber, its events, and the invoices that billed them."""

    def __init__(self, shape: Shape) -> None:
        self.world = World(catalog_from(_document(shape)))
        self.world.run(Subscribe(plan_id=self.world.plan_id("metered")))
        self.events = 0

    def use(self, feature: str, units: Decimal) -> None:
        self.events += 1
        command = RecordUsage(
            idempotency_key=f"e{self.events}",
            event_name=feature,
            feature_key=feature,
            occurred_at=self.world.now,
            units=units,
        )
        assert isinstance(self.world.run(command), UsageAccepted)

    def grant(self, amount: Decimal) -> None:
        self.world.run(
            GrantCredits(denomination="TOKENS", amount=amount, source=GrantSource.PURCHASE)
        )

    def hold(self, units: Decimal) -> None:
        """Another reservation holding `units` calls (and their credits), or denied (RSV-5)."""
        self.events += 1
        items = (HoldItem(feature_key="calls", units=units),)
        self.world.run(Reserve(reservation_id=f"h{self.events}", items=items, ttl_seconds=86400))

    def estimate(self, items: list[tuple[str, Decimal]]) -> ChargeEstimate:
        wanted = [HoldItem(feature_key=f, units=u) for f, u in items]
        return estimate_charges(self.world.state, wanted, self.world.ctx())

    def close(self) -> dict[str, Decimal]:
        """End the current period by the clock and pay what it issued; the usage each feature's
        lines billed at that end, late lines included (INV-30, MNY-B1)."""
        (sub,) = self.world.state.subscriptions.values()
        known = set(self.world.state.invoices)
        self.world.now = sub.current_period_end
        self.world.run(EvaluateEntitlement(feature_key="gb"))
        billed: dict[str, Decimal] = {}
        for invoice in self.world.state.invoices.values():
            if invoice.modified_at != self.world.now and invoice.id in known:
                continue
            for item in invoice.items:
                found = re.match(r"(?:Late u|U)sage for (\w+)", item.description)
                if found:
                    key = found.group(1)
                    billed[key] = billed.get(key, D(0)) + item.charge_amount
            if invoice.status is InvoiceStatus.DUE:
                self.world.run(MarkInvoicePaid(invoice_id=invoice.id))
        self.world.now += timedelta(hours=1)
        return billed


def _billed_after(
    shape: Shape, history: list[tuple[str, Decimal]], items: list[tuple[str, Decimal]]
) -> tuple[dict[str, Decimal], datetime]:
    customer = _prepared(shape, history)
    at = customer.world.now
    for feature, units in items:
        customer.use(feature, units)
    return customer.close(), at


def _prepared(shape: Shape, history: list[tuple[str, Decimal]]) -> Customer:
    """A customer whose earlier usage is recorded; ("close", _) closes a period in between,
    ("hold", units) makes another reservation hold that many calls."""
    customer = Customer(shape)
    if shape.credit_rate is not None:
        customer.grant(D(shape.grant))
    for feature, units in history:
        if feature == "close":
            customer.close()
        elif feature == "hold":
            customer.hold(units)
        else:
            customer.use(feature, units)
    return customer


def _check_against_invoices(
    shape: Shape, history: list[tuple[str, Decimal]], items: list[tuple[str, Decimal]]
) -> ChargeEstimate:
    """RSV-31, RSV-32: for every prefix of the items, the estimate of the next item is what
    its feature's lines grow by when it is recorded too; the total is the invoice's growth."""
    estimate = _prepared(shape, history).estimate(items)
    billed = [_billed_after(shape, history, items[:k])[0] for k in range(len(items) + 1)]
    for k, charge in enumerate(estimate.items):
        feature = items[k][0]
        grew = billed[k + 1].get(feature, D(0)) - billed[k].get(feature, D(0))
        assert charge.charge == grew, (k, charge, billed)
    growth = sum(billed[-1].values(), D(0)) - sum(billed[0].values(), D(0))
    total = sum((amount for _, amount in estimate.totals), D(0))
    assert total == growth
    return estimate


def test_rsv_31_graduated_items_are_cumulative_across_tier_boundaries() -> None:
    """RSV-32, INV-33: 60 GB then 60 GB: the first item pays the first tier's fee and 60 × 0.5;
    the second takes 40 at 0.5 and 20 at 0.25."""
    estimate = _check_against_invoices(Shape(), [], [("gb", D(60)), ("gb", D(60))])
    assert [i.charge for i in estimate.items] == [D("35.00"), D("25.00")]
    assert estimate.totals == (("USD", D("60.00")),)


def test_rsv_32_sub_cent_items_add_up_to_the_rounded_line() -> None:
    """RSV-32, INV-41: 1 call at 0.005 is estimated 0.01 (the line rounds half-up); a second
    is 0.00, since two calls bill 0.01 in all, exactly as the invoice's one line does."""
    estimate = _check_against_invoices(Shape(), [], [("calls", D(1)), ("calls", D(1))])
    assert [i.charge for i in estimate.items] == [D("0.01"), D("0.00")]


def test_rsv_32_credits_cover_first_and_are_gone_for_the_next_item() -> None:
    """RSV-32, CRD-30, INV-37: 0.7 TOKENS at 0.25 per call cover 2.8 calls; the first item of 2
    calls is free, the second of 2 calls bills the 1.2 calls the pool no longer covers."""
    shape = Shape(call_price="0.1", credit_rate="0.25")
    estimate = _check_against_invoices(shape, [], [("calls", D(2)), ("calls", D(2))])
    first, second = estimate.items
    assert (first.credits, first.billable_units, first.charge) == (D("0.5"), D(0), D("0.00"))
    assert (second.credits, second.billable_units) == (D("0.2"), D("1.2"))
    assert second.charge == D("0.12")


def test_rsv_31_included_and_unknown_features_cost_nothing() -> None:
    """RSV-31, RSV-34: an included feature is never a charge (INV-30); a feature no plan of
    the customer has is billed by no invoice: no currency, no charge."""
    customer = Customer(Shape())
    estimate = customer.estimate([("seats", D(3)), ("nothing", D(3))])
    assert [(i.charge, i.currency) for i in estimate.items] == [(D(0), "USD"), (D(0), None)]
    assert estimate.totals == (("USD", D(0)),)


def test_rsv_30_an_estimate_changes_no_state() -> None:
    """RSV-30: the scratch copy absorbs every debit, remainder and counter."""
    customer = _prepared(Shape(credit_rate="0.3333"), [("calls", D(1)), ("gb", D(5))])
    before = encoded(customer.world.state)
    customer.estimate([("calls", D(7)), ("gb", D(500)), ("calls", D(1))])
    assert encoded(customer.world.state) == before


def test_rsv_33_zero_and_three_decimal_currencies() -> None:
    """RSV-33, INV-41: JPY lines round to whole yen, BHD to fils."""
    yen = _check_against_invoices(Shape(currency="JPY", call_price="0.5"), [],
                                  [("calls", D(3)), ("calls", D(1))])  # fmt: skip
    assert [i.charge for i in yen.items] == [D(2), D(0)]  # 1.5 -> 2, then 2.0 -> 2
    fils = _check_against_invoices(Shape(currency="BHD", call_price="0.0005"), [],
                                   [("calls", D(3)), ("calls", D(1))])  # fmt: skip
    assert [i.charge for i in fils.items] == [D("0.002"), D("0.000")]
    assert fils.totals == (("BHD", D("0.002")),)


def test_rsv_34_an_ending_in_advance_period_bills_no_usage() -> None:
    """RSV-34, SUB-44: an IN_ADVANCE subscription cancelled at its period end has no invoice
    that bills this period's usage, so its estimate is 0 in no currency."""
    customer = Customer(Shape(timing="IN_ADVANCE"))
    (sub,) = customer.world.state.subscriptions.values()
    customer.world.run(CancelSubscription(subscription_id=sub.id, mode=CancelMode.END_OF_PERIOD))
    estimate = customer.estimate([("calls", D(1000))])
    assert [(i.charge, i.currency) for i in estimate.items] == [(D(0), None)]
    assert customer.close() == {}


def test_rsv_31_accumulating_ladder_continues_from_billed_periods() -> None:
    """RSV-31, INV-34: an accumulating ladder is positioned by every earlier period."""
    history = [("gb", D(90)), ("close", D(0)), ("gb", D(5))]
    estimate = _check_against_invoices(Shape(gb_mode="accumulate"), history, [("gb", D(10))])
    assert [i.charge for i in estimate.items] == [D("3.75")]  # 5 at 0.5, 5 at 0.25


_units = st.one_of(
    st.decimals(min_value=D("0.001"), max_value=D(3), places=3),  # sub-cent lines, credit quanta
    st.integers(min_value=1, max_value=1500).map(D),  # across the ladder's tiers
)
_feature_units = st.tuples(st.sampled_from(["calls", "gb", "seats"]), _units)
_shapes = st.builds(
    Shape,
    currency=st.sampled_from(["USD", "JPY", "BHD"]),
    call_price=st.sampled_from(["0.005", "0.0333", "1.5"]),
    gb_mode=st.sampled_from(["reset", "accumulate"]),
    timing=st.sampled_from(["IN_ARREARS", "IN_ADVANCE"]),
    credit_rate=st.sampled_from([None, "0.0000025", "0.3333", "1"]),
    gb_credits=st.booleans(),
    hard_limit=st.booleans(),
    grant=st.sampled_from(["0.7", "40", "900"]),
)
_history = st.lists(
    st.one_of(_feature_units, st.just(("close", D(0))), st.tuples(st.just("hold"), _units)),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=_shapes, history=_history, items=st.lists(_feature_units, min_size=1, max_size=3))
def test_rsv_31_estimate_equals_what_the_invoice_bills(
    shape: Shape, history: list[tuple[str, Decimal]], items: list[tuple[str, Decimal]]
) -> None:
    """RSV-31, RSV-32, RSV-33: for usage-based and graduated (reset and accumulating) plans, in
    currencies of 0, 2 and 3 decimals, with and without credits, after earlier usage and
    closed periods and beside other reservations' holds (RSV-34, RSV-10): each item's estimate is exactly the growth of its feature's lines on the
    invoice that bills it, and the total is the invoice's growth."""
    _check_against_invoices(shape, history, items)


def test_rsv_34_credits_held_by_another_reservation_are_not_the_estimates() -> None:
    """RSV-34, RSV-10: 0.7 TOKENS of a hard-limited pool, of which another reservation holds
    0.5 (2 calls at 0.25); an event of 2 calls may draw only the 0.2 left, so 1.2 calls are
    billed. (A soft pool's held credits stay spendable: the property covers both.)"""
    shape = Shape(call_price="0.1", credit_rate="0.25", hard_limit=True)
    estimate = _check_against_invoices(shape, [("hold", D(2))], [("calls", D(2))])
    (item,) = estimate.items
    assert (item.credits, item.billable_units, item.charge) == (D("0.2"), D("1.2"), D("0.12"))


def test_rsv_36_committing_what_a_preflight_reserved_bills_its_estimate() -> None:
    """RSV-36, RSV-12: a pre-flight reserves 2 + 2 calls and 60 GB; committing those units
    (the hold's own credits are the commit's to draw) bills exactly the estimated total."""
    shape = Shape(call_price="0.1", credit_rate="0.25", hard_limit=False)
    customer = _prepared(shape, [])
    items = (HoldItem(feature_key="calls", units=D(2)), HoldItem(feature_key="gb", units=D(60)),
             HoldItem(feature_key="calls", units=D(2)))  # fmt: skip
    reply = customer.world.run(Preflight(reserve=Reserve(reservation_id="p", items=items)))
    assert isinstance(reply, Preflighted) and isinstance(reply.reservation, Reserved)
    units = {"calls": D(4), "gb": D(60)}
    for feature, total in units.items():
        committed = commit(customer.world, "p", total, feature)
        assert isinstance(committed, Committed)
    billed = customer.close()
    assert billed == {"calls": D("0.12"), "gb": D("35.00")}
    assert reply.totals == (("USD", D("35.12")),)
    for feature in units:
        mine = [i.charge.charge for i in reply.items if i.decision.feature_key == feature]
        assert sum(mine, D(0)) == billed[feature]


def test_rsv_33_subscriptions_in_two_currencies_give_two_totals() -> None:
    """RSV-33: `calls` is governed by a USD plan and `gb` by a EUR plan (ENT-18): each item is
    priced in its own plan's currency, and the totals are kept apart."""
    usd, eur = _document(Shape()), _document(Shape(currency="EUR"))
    usd["plans"][0]["features"] = usd["plans"][0]["features"][:1]
    eur["plans"][0] |= {"key": "storage", "name": "Storage"}
    eur["plans"][0]["features"] = eur["plans"][0]["features"][1:2]
    world = World(catalog_from({**usd, "plans": usd["plans"] + eur["plans"]}))
    world.run(Subscribe(plan_id=world.plan_id("metered")))
    world.run(Subscribe(plan_id=world.plan_id("storage")))
    items = [HoldItem(feature_key="gb", units=D(10)), HoldItem(feature_key="calls", units=D(3))]
    estimate = estimate_charges(world.state, items, world.ctx())
    assert estimate.totals == (("EUR", D("10.00")), ("USD", D("0.02")))
