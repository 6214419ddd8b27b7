"""The money reference model (issue 12, item 8): a state machine drives one customer through
the money paths (subscriptions in advance and in arrears, upgrades and scheduled downgrades,
END_OF_PERIOD cancellation and revert, purchases, metered usage on time, late and before the
start, sub-quantum credit-backed usage, clock advances) and, after every step, compares every
invoice total and the TOKENS balance with `MoneyReference`, which bills the same history by
brute force (tests/domain/money_reference.py).

Rules it checks: MNY-A1 (SUB-64..SUB-67), MNY-B1..MNY-B6 (INV-30..INV-34, INV-41, INV-43,
INV-51, INV-52, AMB-23, CRD-30..CRD-32), SUB-30, SUB-44, CRD-43.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from allotment.domain.commands import (
    CancelScheduledChange,
    CancelSubscription,
    ChangePlan,
    EvaluateEntitlement,
    GrantCredits,
    MarkInvoicePaid,
    RecordUsage,
    RevertCancellation,
    Subscribe,
)
from allotment.domain.credits import GrantSource
from allotment.domain.replies import Done, Subscribed, UsageAccepted
from allotment.domain.state import PAYABLE, CancelMode, ChangeType
from tests.domain.harness import D, World, catalog_from
from tests.domain.money_reference import CHAT_PRICE, MoneyReference, RefPlan, Tier

# The workload. Two in-arrears plans, so that upgrades between them prorate segments (INV-52,
# MNY-B4); MNY-A4 refuses changes across billing timings, and the reference follows refusals.
MONEY_PLANS = ["basic", "pro", "ent", "flat", "arrears", "arrears_plus"]
CALL_UNITS = st.decimals(0, 5_000, places=6)  # INV-43: usage keeps 6 places
GB_UNITS = st.decimals(0, 400, places=6)  # across the tiers of the graduated `gb` ladder
CHAT_UNITS = st.decimals(0, 60, places=6)  # 60 × 0.0000025 = 0.00015: around the quantum
CREDITS_PER_UNIT = D("0.0000025")  # sub-quantum: MNY-B3's carried remainder (issue 12 item 3)
LATE_DAYS = 40  # usage dated into closed periods (MNY-B1) and before the start (MNY-B6)
DAYS_LATE = st.one_of(st.just(0), st.integers(1, LATE_DAYS))  # on time half the time
GAPS = st.integers(0, 4 * 86_400)  # the clock moves between events, so periods close often


def _ladder(scale: str) -> tuple[Tier, ...]:
    """A reset graduated ladder with a flat fee, scaled per plan, so that merging periods or
    pricing a period on another plan's ladder shows (issue 12, item 2)."""
    k = D(scale)
    return (
        (D(100), D("0.5") * k, D(5)),
        (D(1000), D("0.25") * k, D(0)),
        (None, D("0.1") * k, D(0)),
    )


REFERENCE_PLANS = {
    "basic": RefPlan("basic", D(10), D(100_000), D("0.002"), _ladder("1")),
    "pro": RefPlan("pro", D(49), D(1_000_000), D("0.001"), _ladder("0.8")),
    "ent": RefPlan("ent", D(99), D(5_000_000), D("0.0008"), _ladder("0.6")),
    "flat": RefPlan("flat", D(25), D(0), D("0.0015"), _ladder("1.2")),
    "arrears": RefPlan("arrears", D(30), D(200_000), D("0.001"), _ladder("0.9"), in_arrears=True),
    "arrears_plus": RefPlan(
        "arrears_plus", D("70.33"), D(600_000), D("0.0009"), _ladder("0.7"), in_arrears=True
    ),
}


def _tiers(plan: RefPlan) -> list[dict[str, Any]]:
    return [
        {"upTo": "inf" if up_to is None else str(up_to), "pricePerUnit": str(price),
         "flatFee": str(flat)}
        for up_to, price, flat in plan.gb_tiers
    ]  # fmt: skip


def _money_plan(plan: RefPlan) -> dict[str, object]:
    document: dict[str, object] = {
        "key": plan.key,
        "name": plan.key.title(),
        "priceAmount": str(plan.price),
        "currency": "USD",
        "intervalMonths": 1,
        "billingTiming": "IN_ARREARS" if plan.in_arrears else "IN_ADVANCE",
        "features": [
            {"featureKey": "calls", "pricingType": "usage_based",
             "pricePerUnit": str(plan.calls_price)},
            {"featureKey": "gb", "pricingType": "graduated", "tiers": _tiers(plan)},
            {"featureKey": "chat", "pricingType": "usage_based", "pricePerUnit": str(CHAT_PRICE),
             "creditModelKey": "tok", "creditsPerUnit": str(CREDITS_PER_UNIT)},
        ],
    }  # fmt: skip
    if plan.allocation:
        document["creditAllocations"] = [
            {"creditModelKey": "tok", "creditAmount": str(plan.allocation)}
        ]
    return document


MONEY_CATALOG = {
    "features": [{"key": "calls"}, {"key": "gb"}, {"key": "chat"}],
    "creditModels": [
        {"key": "tok", "denomination": "TOKENS", "hardLimit": True, "rolloverPolicy": "FULL"}
    ],
    "plans": [_money_plan(p) for p in REFERENCE_PLANS.values()],
}


class MoneyMachine(RuleBasedStateMachine):
    """The engine bills exactly what the brute-force reference bills, after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World(catalog_from(MONEY_CATALOG))
        self.reference = MoneyReference(REFERENCE_PLANS, CREDITS_PER_UNIT)
        self.keys = 0

    def _live(self) -> uuid.UUID | None:
        live = self.world.state.live_subscriptions()
        return live[0].id if live else None

    def _pay_everything(self) -> None:
        """The customer pays promptly, so no subscription is ever suspended here."""
        for invoice in list(self.world.state.invoices.values()):
            if invoice.status in PAYABLE:
                done = self.world.run(MarkInvoicePaid(invoice_id=invoice.id))
                assert isinstance(done, Done)

    def _record(
        self, feature: str, units: Decimal, days_late: int
    ) -> tuple[UsageAccepted, datetime]:
        self.keys += 1
        at = self.world.now - timedelta(days=days_late)
        reply = self.world.run(
            RecordUsage(
                idempotency_key=f"m{self.keys}",
                event_name=feature,
                feature_key=feature,
                occurred_at=at,
                units=units,
            )
        )
        assert isinstance(reply, UsageAccepted)
        return reply, at

    @initialize(plan=st.sampled_from(MONEY_PLANS))
    def start(self, plan: str) -> None:
        self.resubscribe(plan)

    @rule(plan=st.sampled_from(MONEY_PLANS))
    def resubscribe(self, plan: str) -> None:
        if self._live() is not None:
            return
        reply = self.world.run(Subscribe(plan_id=self.world.plan_id(plan), grace_period_days=3))
        assert isinstance(reply, Subscribed)
        self.reference.subscribe(plan, self.world.now)
        self._pay_everything()

    @rule(
        feature=st.sampled_from(["calls", "gb"]),
        data=st.data(),
        days_late=DAYS_LATE,
        gap=GAPS,
    )
    def use(self, feature: str, data: st.DataObject, days_late: int, gap: int) -> None:
        """MNY-B1, MNY-B2, MNY-B6: metered usage, possibly dated into closed periods or before
        the subscription started."""
        self.wait(gap)
        if self._live() is None:
            return
        units = D(data.draw(CALL_UNITS if feature == "calls" else GB_UNITS))
        reply, at = self._record(feature, units, days_late)
        assert not reply.over_limit
        self.reference.use(feature, units, at)

    @rule(units=CHAT_UNITS, days_late=DAYS_LATE, gap=GAPS)
    def use_chat(self, units: Decimal, days_late: int, gap: int) -> None:
        """MNY-B3, MNY-B5: small credit-backed events; many are below the credit quantum."""
        self.wait(gap)
        self._chat(D(units), days_late)

    @rule(percent=st.integers(1, 130))
    def use_chat_share(self, percent: int) -> None:
        """Spend a share of the balance, past it at times: the hard-limited pool covers what it
        can, and what it cannot is flagged and billed in units (MNY-B5)."""
        share = self.reference.balance * percent / 100 / CREDITS_PER_UNIT
        self._chat(share.quantize(D("0.000001")), 0)

    def _chat(self, units: Decimal, days_late: int) -> None:
        if self._live() is None:
            return
        reply, at = self._record("chat", units, days_late)
        assert reply.over_limit == self.reference.use_chat(units, at)

    @rule(amount=st.integers(1, 2_000_000))
    def purchase(self, amount: int) -> None:
        self.world.run(
            GrantCredits(denomination="TOKENS", amount=D(amount), source=GrantSource.PURCHASE)
        )
        self.reference.purchase(D(amount))

    @rule(plan=st.sampled_from(MONEY_PLANS), upgrade=st.booleans())
    def change(self, plan: str, upgrade: bool) -> None:
        sub = self._live()
        if sub is None:
            return
        kind = ChangeType.UPGRADE if upgrade else ChangeType.DOWNGRADE
        reply = self.world.run(
            ChangePlan(subscription_id=sub, to_plan_id=self.world.plan_id(plan), change_type=kind)
        )
        if isinstance(reply, Done):  # a refusal is not money: the reference follows the engine
            if upgrade:
                self.reference.upgrade(plan, self.world.now)
            else:
                self.reference.schedule_downgrade(plan)
        self._pay_everything()

    @rule(data=st.data(), upgrade=st.booleans())
    def move(self, data: st.DataObject, upgrade: bool) -> None:
        """A change to another plan of the same billing timing, which MNY-A4 accepts: so that
        in-arrears periods get prorated segments (INV-52, MNY-B4) as often as in-advance ones
        get adjustments (INV-51)."""
        sub = self._live()
        if sub is None:
            return
        current = self.world.catalog.plans[self.world.state.subscriptions[sub].plan_id].key
        timing = REFERENCE_PLANS[current].in_arrears
        others = [
            p for p in MONEY_PLANS if p != current and REFERENCE_PLANS[p].in_arrears == timing
        ]
        self.change(data.draw(st.sampled_from(others)), upgrade)

    @rule()
    def cancel_change(self) -> None:
        sub = self._live()
        if sub is not None and isinstance(
            self.world.run(CancelScheduledChange(subscription_id=sub)), Done
        ):
            self.reference.schedule_downgrade(None)

    @rule(revert=st.booleans())
    def cancel_at_period_end(self, revert: bool) -> None:
        sub = self._live()
        if sub is None:
            return
        command = (
            RevertCancellation(subscription_id=sub)
            if revert
            else CancelSubscription(subscription_id=sub, mode=CancelMode.END_OF_PERIOD)
        )
        assert isinstance(self.world.run(command), Done)
        self.reference.set_ending(not revert)

    @rule(seconds=st.integers(0, 40 * 86_400))
    def wait(self, seconds: int) -> None:
        """Up to the next period end at a time, paying after each, as a prompt customer would."""
        target = self.world.now + timedelta(seconds=seconds)
        while self.world.now < target:
            sub = self._live()
            end = self.world.state.subscriptions[sub].current_period_end if sub else target
            self.world.now = min(target, end)
            self.world.run(EvaluateEntitlement(feature_key="calls"))
            self.reference.advance(self.world.now)
            self._pay_everything()

    @rule(before=st.integers(1, 120))
    def near_period_end(self, before: int) -> None:
        """Jump to `before` seconds short of the period end, where proration rounds to 0."""
        sub = self._live()
        if sub is None:
            return
        end = self.world.state.subscriptions[sub].current_period_end
        target = end - timedelta(seconds=before)
        if target > self.world.now:
            self.world.now = target
            self.world.run(EvaluateEntitlement(feature_key="calls"))
            self.reference.advance(self.world.now)

    @invariant()
    def balance_matches_the_reference(self) -> None:
        pool = self.world.state.pools.get("TOKENS")
        assert (pool.balance if pool else D(0)) == self.reference.balance

    @invariant()
    def invoices_match_the_reference(self) -> None:
        engine = [
            (i.type.value, i.period_start, i.amount) for i in self.world.state.invoices.values()
        ]
        expected = [(i.type, i.period_start, i.amount) for i in self.reference.invoices]
        assert engine == expected


MoneyMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, derandomize=True
)
test_money_matches_the_reference = MoneyMachine.TestCase
