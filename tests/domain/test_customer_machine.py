"""A Hypothesis state machine drives one customer through random events, plan changes,
cancellations, payments and clock advances, and checks every invariant after each step:
pool conservation, invoice items summing to amounts, at most one live subscription per plan,
access consistent with invoice states, and a journal that replays to the same state.

The money reference model (issue 12, item 8) is its own machine: test_money_machine.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from allotment.domain import invariants
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
from allotment.domain.replies import Decision, DenialReason
from allotment.domain.state import AccessState, CancelMode, ChangeType, InvoiceStatus
from tests.domain.harness import World, encoded, replay

PLANS = ["free", "starter_monthly", "pro_monthly", "enterprise_monthly", "usage_monthly"]
FEATURES = ["api_calls", "ai_chat", "storage_gb", "projects", "sso"]


class CustomerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.keys = 0

    def _subscription(self, index: int) -> uuid.UUID | None:
        subs = list(self.world.state.subscriptions)
        return subs[index % len(subs)] if subs else None

    @rule(plan=st.sampled_from(PLANS), grace=st.integers(0, 5))
    def subscribe(self, plan: str, grace: int) -> None:
        self.world.run(Subscribe(plan_id=self.world.plan_id(plan), grace_period_days=grace))

    @rule(index=st.integers(0, 50))
    def pay(self, index: int) -> None:
        invoices = list(self.world.state.invoices.values())
        if invoices:
            self.world.run(MarkInvoicePaid(invoice_id=invoices[index % len(invoices)].id))

    @rule(
        feature=st.sampled_from(FEATURES), units=st.integers(0, 400_000), days=st.integers(-40, 5)
    )
    def use(self, feature: str, units: int, days: int) -> None:
        self.keys += 1
        when = self.world.now + timedelta(days=days)
        self.world.run(
            RecordUsage(
                idempotency_key=f"k{self.keys}",
                event_name=feature,
                feature_key=feature,
                occurred_at=when,
                units=Decimal(units),
            )
        )

    @rule(amount=st.integers(1, 10**6), days=st.one_of(st.none(), st.integers(1, 90)))
    def grant(self, amount: int, days: int | None) -> None:
        expires = None if days is None else self.world.now + timedelta(days=days)
        self.world.run(
            GrantCredits(
                denomination="TOKENS",
                amount=Decimal(amount),
                source=GrantSource.PURCHASE,
                expires_at=expires,
            )
        )

    @rule(seconds=st.integers(0, 45 * 86_400))
    def wait(self, seconds: int) -> None:
        self.world.advance(seconds)
        self.world.run(EvaluateEntitlement(feature_key="api_calls"))

    @rule(index=st.integers(0, 20), immediate=st.booleans())
    def cancel(self, index: int, immediate: bool) -> None:
        sub = self._subscription(index)
        if sub is not None:
            mode = CancelMode.IMMEDIATE if immediate else CancelMode.END_OF_PERIOD
            self.world.run(CancelSubscription(subscription_id=sub, mode=mode))

    @rule(index=st.integers(0, 20))
    def revert(self, index: int) -> None:
        sub = self._subscription(index)
        if sub is not None:
            self.world.run(RevertCancellation(subscription_id=sub))

    @rule(index=st.integers(0, 20), plan=st.sampled_from(PLANS), upgrade=st.booleans())
    def change(self, index: int, plan: str, upgrade: bool) -> None:
        sub = self._subscription(index)
        if sub is not None:
            kind = ChangeType.UPGRADE if upgrade else ChangeType.DOWNGRADE
            self.world.run(
                ChangePlan(
                    subscription_id=sub, to_plan_id=self.world.plan_id(plan), change_type=kind
                )
            )

    @rule(index=st.integers(0, 20))
    def cancel_change(self, index: int) -> None:
        sub = self._subscription(index)
        if sub is not None:
            self.world.run(CancelScheduledChange(subscription_id=sub))

    @invariant()
    def state_is_consistent(self) -> None:
        invariants.check(self.world.state)

    @invariant()
    def access_follows_invoices(self) -> None:
        state = self.world.state
        for sub in state.subscriptions.values():
            statuses = {i.status for i in state.invoices.values() if i.subscription_id == sub.id}
            if sub.access is AccessState.ACTIVE:
                assert InvoiceStatus.PAST_DUE not in statuses
            if sub.access is AccessState.SUSPENDED:
                assert InvoiceStatus.PAST_DUE in statuses
            if not sub.live:
                assert sub.access is AccessState.ENDED

    @invariant()
    def denial_matches_access(self) -> None:
        state = self.world.state
        if not any(s.live for s in state.subscriptions.values()):
            decision = self.world.run(EvaluateEntitlement(feature_key="projects"))
            assert isinstance(decision, Decision)
            assert decision.reason is DenialReason.NO_ACTIVE_SUBSCRIPTION

    def teardown(self) -> None:
        assert encoded(replay(self.world.facts)) == encoded(self.world.state)


CustomerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_customer_machine = CustomerMachine.TestCase
