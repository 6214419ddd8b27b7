"""Credit pools: burn-down order (CRD-31), conservation (CRD-3), expiry (CRD-42), ledger (CRD-20)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from allotment.domain import invariants
from allotment.domain.commands import (
    EvaluateEntitlement,
    GrantCredits,
    MarkInvoicePaid,
    RecordUsage,
    Subscribe,
)
from allotment.domain.credits import GrantSource, PoolStatus, TransactionType
from allotment.domain.facts import CreditsDebited, CreditsExpired, CreditsGranted
from allotment.domain.replies import Decision, DenialReason, Subscribed, UsageAccepted
from tests.domain.harness import START, D, World


def _pro_world() -> World:
    """A customer on the pro plan, paid, so `ai_chat` draws from the TOKENS pool."""
    world = World()
    reply = world.run(Subscribe(plan_id=world.plan_id("pro_monthly")))
    assert isinstance(reply, Subscribed)
    world.run(MarkInvoicePaid(invoice_id=reply.invoice.id))
    return world


def _use(world: World, key: str, units: Decimal) -> UsageAccepted:
    reply = world.run(
        RecordUsage(
            idempotency_key=key,
            event_name="chat",
            feature_key="ai_chat",
            occurred_at=world.now,
            units=units,
        )
    )
    assert isinstance(reply, UsageAccepted)
    return reply


def test_crd31_burns_soonest_expiring_first_and_non_expiring_last() -> None:
    world = World()
    world.run(
        GrantCredits(denomination="TOKENS", amount=D(10), source=GrantSource.PURCHASE)
    )  # never expires
    world.run(
        GrantCredits(
            denomination="TOKENS",
            amount=D(10),
            source=GrantSource.PROMOTION,
            expires_at=START + timedelta(days=30),
        )
    )
    world.run(
        GrantCredits(
            denomination="TOKENS",
            amount=D(10),
            source=GrantSource.MANUAL,
            expires_at=START + timedelta(days=5),
        )
    )
    pool = world.state.pools["TOKENS"]
    assert [g.source for g in pool.grants] == [
        GrantSource.MANUAL,
        GrantSource.PROMOTION,
        GrantSource.PURCHASE,
    ]


def test_crd12_pro_plan_grants_its_allocation_on_payment() -> None:
    world = _pro_world()
    pool = world.state.pools["TOKENS"]
    assert pool.balance == D(1_000_000) and pool.hard_limit is True


def test_crd31_debit_spans_grants_in_burn_order() -> None:
    world = _pro_world()
    world.run(
        GrantCredits(
            denomination="TOKENS",
            amount=D(100),
            source=GrantSource.PROMOTION,
            expires_at=START + timedelta(days=2),
        )
    )
    _use(world, "e1", D(150))
    debits = [f for f in world.facts if isinstance(f, CreditsDebited)]
    assert [f.transaction.amount for f in debits] == [D(-100), D(-50)]
    assert world.state.pools["TOKENS"].balance == D(1_000_000) - 50


def test_crd32_hard_limit_flags_the_uncovered_event_and_denies_afterwards() -> None:
    """Checklist 29: balance 10, event of 10 -> 0 and DEPLETED; the next check denies."""
    world = _pro_world()
    _use(world, "drain", D(1_000_000) - 10)
    assert _use(world, "e10", D(10)).over_limit is False
    pool = world.state.pools["TOKENS"]
    assert pool.balance == 0 and pool.status is PoolStatus.DEPLETED
    decision = world.run(EvaluateEntitlement(feature_key="ai_chat"))
    assert isinstance(decision, Decision) and decision.reason is DenialReason.INSUFFICIENT_CREDITS
    flagged = _use(world, "e5", D(5))
    assert flagged.over_limit is True and flagged.message == "Credit pool depleted for 'TOKENS'."
    assert world.state.pools["TOKENS"].balance == 0


def test_crd42_grants_expire_at_expires_at_with_a_ledger_entry() -> None:
    world = World()
    world.run(
        GrantCredits(
            denomination="TOKENS",
            amount=D(7),
            source=GrantSource.PROMOTION,
            expires_at=START + timedelta(days=1),
        )
    )
    world.advance(86_400)
    world.run(EvaluateEntitlement(feature_key="ai_chat"))  # any turn applies what is due
    pool = world.state.pools["TOKENS"]
    assert pool.balance == 0 and pool.total_expired == 7
    expired = [f for f in world.facts if isinstance(f, CreditsExpired)]
    assert len(expired) == 1 and expired[0].at == START + timedelta(days=1)


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("grant"),
            st.decimals(min_value="0.0001", max_value=10**6, places=4),
            st.one_of(st.none(), st.integers(1, 90)),
        ),
        st.tuples(st.just("use"), st.decimals(min_value=0, max_value=10**6, places=6), st.none()),
        st.tuples(st.just("wait"), st.integers(min_value=0, max_value=40 * 86_400), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_crd3_pool_conservation_holds_after_every_step(
    ops: list[tuple[str, Decimal | int, int | None]],
) -> None:
    """balance = granted − consumed − expired − reversed, after any sequence of grants,
    debits and expiries; and the totals equal the sums of the ledger (CRD-21)."""
    world = _pro_world()
    for i, (kind, amount, days) in enumerate(ops):
        if kind == "grant":
            expires = None if days is None else world.now + timedelta(days=days)
            world.run(
                GrantCredits(
                    denomination="TOKENS",
                    amount=Decimal(amount),
                    source=GrantSource.PURCHASE,
                    expires_at=expires,
                )
            )
        elif kind == "use":
            _use(world, f"e{i}", Decimal(amount))
        else:
            world.advance(int(amount))
            world.run(EvaluateEntitlement(feature_key="ai_chat"))
        invariants.check(world.state)
    pool = world.state.pools["TOKENS"]
    ledger = [
        f.transaction
        for f in world.facts
        if isinstance(f, CreditsGranted | CreditsDebited | CreditsExpired)
    ]
    assert pool.total_granted == sum(
        (t.amount for t in ledger if t.type is TransactionType.GRANT), D(0)
    )
    assert pool.total_consumed == -sum(
        (t.amount for t in ledger if t.type is TransactionType.DEBIT), D(0)
    )
    assert pool.total_expired == -sum(
        (t.amount for t in ledger if t.type is TransactionType.EXPIRATION), D(0)
    )
    for before, after in pairwise(ledger):
        assert after.balance_before == before.balance_after  # an unbroken chain of balances
