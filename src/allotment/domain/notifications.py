"""Which notifications a turn raises (issue 15 items 3 and 4; docs/webhooks.md, "Event types").

`notifications` looks at the facts a turn just applied, including the catch-up facts of the
timer sweep, and at the state after them, and returns `NotificationRaised` facts. The actor
applies those in the same turn, so each is journalled in the record of the facts that caused
it (WHK-E36): it exists if and only if its cause was committed, and replay applies it from the
journal instead of deciding it again (WHK-E37).

Each notice follows the last fact of the turn that concerns it, so causes come first: an
invoice goes past due, then its subscription is suspended (WHK-E38).

Usage thresholds are the exception, for the hot path's sake: `record_usage` decides them with
the event (`notify_levels.threshold_notices`), where the limit and the usage are at hand, and
they join the same turn's facts the same way (WHK-E1).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TypedDict, cast

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.context import TurnContext
from allotment.domain.facts import (
    CreditsExpired,
    CreditsGranted,
    Fact,
    InvoiceIssued,
    InvoiceRevised,
    InvoiceStatusChanged,
    NotificationRaised,
    ReservationCommitted,
    ReservationExpired,
    ReservationExtended,
    ReservationHeld,
    ReservationReleased,
    SubscriptionChanged,
    SubscriptionStarted,
    UsageRecorded,
)
from allotment.domain.notification_types import (
    CreditGrantExpired,
    InvoiceCreated,
    InvoicePaid,
    InvoicePastDue,
    InvoiceVoided,
    Notification,
    SubscriptionActivated,
    SubscriptionCancellationScheduled,
    SubscriptionEnded,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionSuspended,
)
from allotment.domain.notify_levels import CREDIT_MOVES, CreditMove, Positioned, pool_notices
from allotment.domain.om_notify_decide import om_notices
from allotment.domain.reservation_expiry import expired_notice
from allotment.domain.state import (
    SETTLED,
    AccessState,
    CancelMode,
    CustomerState,
    Invoice,
    InvoiceStatus,
    Subscription,
)

__all__ = ("notifications",)


def notifications(
    before: Mapping[uuid.UUID, Subscription],
    state: CustomerState,
    facts: Sequence[Fact],
    ctx: TurnContext,
) -> list[Fact]:
    """The notifications `facts`, just applied to `state`, raise, as facts to apply next.

    Args:
        before: the customer's subscriptions as they were when the turn began (entities are
            replaced whole, so a shallow copy of the dict is the whole "before").
        state: the customer after `facts`.
        facts: the facts the turn applied, in order; notifications among them are ignored.
        ctx: the turn's context: the catalog, and `new_id` for each notification's id.
    """
    if not facts or (len(facts) == 1 and type(facts[0]) is UsageRecorded):
        return []  # the hot path: an event's thresholds were decided with it (WHK-E1)
    if all(type(fact) in _QUIET for fact in facts):
        return []  # a reserve or a commit: none of its facts raises or moves a subscription
    raised = _other_notices(before, state, facts, ctx.catalog)
    if not raised:
        return []
    raised.sort(key=lambda positioned: positioned[0])  # stable: same position keeps order
    return [
        NotificationRaised(at=facts[position].at, notification_id=ctx.new_id(), payload=notice)
        for position, notice in raised
    ]


def _other_notices(
    before: Mapping[uuid.UUID, Subscription],
    state: CustomerState,
    facts: Sequence[Fact],
    catalog: Catalog,
) -> list[Positioned]:
    raised: list[Positioned] = []
    pools: dict[str, int] = {}  # denomination -> position of the last fact moving it
    subs: dict[uuid.UUID, int] = {}  # subscription -> position of the last fact about it
    for position, fact in enumerate(facts):
        kind = type(fact)  # exact types, not isinstance: this runs for every credit debit
        if kind in _CREDIT_MOVES:
            move = cast(CreditMove, fact)
            pools[move.denomination] = position
            if type(move) is CreditsExpired:
                raised.append((position, _grant_expired(move)))
            elif type(move) is CreditsGranted and move.subscription_id is not None:
                subs[move.subscription_id] = position
        elif kind in _SUBSCRIPTION_FACTS:
            subs[cast(SubscriptionStarted | SubscriptionChanged, fact).subscription.id] = position
        elif kind in _INVOICE_FACTS:
            invoice_fact = cast(InvoiceIssued | InvoiceRevised | InvoiceStatusChanged, fact)
            invoice = _invoice_as_of(state, invoice_fact)
            subs[invoice.subscription_id] = position
            raised += [(position, n) for n in _invoice_notices(invoice_fact, invoice)]
        elif kind is ReservationExpired:  # WHK-E40
            raised.append((position, expired_notice(state, cast(ReservationExpired, fact))))
    if pools:
        raised += pool_notices(state, catalog, pools)
    raised += _subscription_changes(before, state, catalog, subs, len(facts) - 1)
    if catalog.notification_rules:  # OpenMeter's rules (OM-142..OM-146)
        raised += om_notices(state, facts, catalog)
    return raised


_CREDIT_MOVES = frozenset(CREDIT_MOVES)
_SUBSCRIPTION_FACTS = frozenset((SubscriptionStarted, SubscriptionChanged))
_INVOICE_FACTS = frozenset((InvoiceIssued, InvoiceRevised, InvoiceStatusChanged))
# Facts that raise no notice and change no subscription (so `before` still pairs up with the
# state by identity and `_subscription_changes` finds nothing): the facts of a reserve and of
# a commit without credits. Threshold notices of a commit's event were decided with it (WHK-E1).
_QUIET = frozenset(
    (
        UsageRecorded,
        NotificationRaised,
        ReservationHeld,
        ReservationCommitted,
        ReservationReleased,
        ReservationExtended,
    )
)


def _subscription_changes(
    before: Mapping[uuid.UUID, Subscription],
    state: CustomerState,
    catalog: Catalog,
    touched: dict[uuid.UUID, int],
    last: int,
) -> list[Positioned]:
    """Subscriptions are never removed and dicts keep their order, so the turn's start and
    end pair up by position; entities are replaced whole, so `is` finds the changed ones."""
    raised: list[Positioned] = []
    previous_versions = list(before.values())
    for index, sub in enumerate(state.subscriptions.values()):
        previous = previous_versions[index] if index < len(previous_versions) else None
        if previous is not sub:
            position = touched.get(sub.id, last)
            raised += [(position, n) for n in _subscription_notices(previous, sub, catalog)]
    return raised


def _grant_expired(fact: CreditsExpired) -> CreditGrantExpired:
    """WHK-E15: one notice per expiry fact; a grant expires once."""
    return CreditGrantExpired(
        pool_id=fact.transaction.pool_id,
        denomination=fact.denomination,
        grant_id=fact.grant_id,
        expired_amount=-fact.transaction.amount,
        balance=fact.transaction.balance_after,
    )


def _invoice_as_of(
    state: CustomerState, fact: InvoiceIssued | InvoiceRevised | InvoiceStatusChanged
) -> Invoice:
    """The invoice as this fact left it (later facts of the turn may have changed it since)."""
    if isinstance(fact, InvoiceStatusChanged):
        current = state.invoices[fact.invoice_id]
        return msgspec.structs.replace(current, status=fact.status, modified_at=fact.at)
    return fact.invoice


def _invoice_notices(
    fact: InvoiceIssued | InvoiceRevised | InvoiceStatusChanged, invoice: Invoice
) -> list[Notification]:
    """WHK-E20..WHK-E24. Each status is entered at most once per invoice (VOID, PAID and
    PAST_DUE are not left for a status they came from), so each fires once."""
    notices: list[Notification] = []
    if isinstance(fact, InvoiceIssued):
        notices.append(InvoiceCreated(invoice=invoice))
    if invoice.status in SETTLED:
        notices.append(InvoicePaid(invoice=invoice))
    elif invoice.status is InvoiceStatus.PAST_DUE:
        notices.append(InvoicePastDue(invoice=invoice))
    elif invoice.status is InvoiceStatus.VOID:
        notices.append(InvoiceVoided(invoice=invoice))
    return notices


def _subscription_notices(
    previous: Subscription | None, sub: Subscription, catalog: Catalog
) -> list[Notification]:
    """WHK-E30..WHK-E35: what changed between the subscription at the turn's start and now."""
    common = _SubscriptionFields(subscription=sub, plan_key=_plan_key(catalog, sub.plan_id))
    notices: list[Notification] = []
    if previous is not None and previous.plan_id != sub.plan_id:
        notices.append(
            SubscriptionPlanChanged(
                **common,
                from_plan_id=previous.plan_id,
                from_plan_key=_plan_key(catalog, previous.plan_id),
            )
        )
    if (
        previous is not None
        and sub.live
        and sub.current_period_start > previous.current_period_start
    ):
        notices.append(
            SubscriptionRenewed(**common, previous_period_start=previous.current_period_start)
        )
    if (
        sub.live
        and sub.cancel_mode is CancelMode.END_OF_PERIOD
        and sub.cancel_effective_at is not None
        and (previous is None or previous.cancel_effective_at != sub.cancel_effective_at)
    ):
        notices.append(SubscriptionCancellationScheduled(**common))
    was = previous.access if previous is not None else None
    if was is not sub.access:
        if sub.access is AccessState.ACTIVE:
            notices.append(SubscriptionActivated(**common))
        elif sub.access is AccessState.SUSPENDED:
            notices.append(SubscriptionSuspended(**common))
        elif sub.access is AccessState.ENDED:
            notices.append(SubscriptionEnded(**common))
    return notices


class _SubscriptionFields(TypedDict):
    subscription: Subscription
    plan_key: str | None


def _plan_key(catalog: Catalog, plan_id: uuid.UUID) -> str | None:
    plan = catalog.plans.get(plan_id)
    return plan.key if plan is not None else None
