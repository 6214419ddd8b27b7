"""The multi-feature pre-flight (RSV-30..RSV-37): every item's cumulative decision, its usage
after the whole request and its estimated charge, and with `reserve` the hold of all items or
none, in one turn."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from allotment.domain.commands import HoldItem, Preflight
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.estimate import estimate_charges
from allotment.domain.holds import evaluate_items, governing_link
from allotment.domain.money import ZERO
from allotment.domain.preflight_replies import Preflighted, PreflightItem, UsageAfter
from allotment.domain.replies import Rejected, RejectionKind
from allotment.domain.reservation_replies import ItemDecision, Reserved, ReserveDenied
from allotment.domain.reservations import reserve
from allotment.domain.state import CustomerState

__all__ = ("preflight", "preflight_answer")


def preflight_answer(
    state: CustomerState, items: Sequence[HoldItem], ctx: TurnContext
) -> Preflighted:
    """The read-only pre-flight (RSV-30): pure, nothing held, nothing recorded."""
    decided = evaluate_items(state, ctx.catalog, items)
    estimate = estimate_charges(state, items, ctx)
    after = _usage_after(decided)
    answered = tuple(
        PreflightItem(decision=decision, usage_after=after.get(decision.feature_key), charge=charge)
        for decision, charge in zip(decided, estimate.items, strict=True)
    )
    return Preflighted(items=answered, totals=estimate.totals)


def preflight(state: CustomerState, command: Preflight, ctx: TurnContext) -> Outcome:
    """The pre-flight with `reserve` (RSV-36): the answer and the hold of every item or none
    are decided on the same state, in the same turn; the only facts are the hold's."""
    problem = _boolean_item(state, command.reserve.items, ctx)
    if problem is not None:
        return Outcome(problem)
    answer = preflight_answer(state, command.reserve.items, ctx)
    held = reserve(state, command.reserve, ctx)
    if not isinstance(held.reply, Reserved | ReserveDenied):
        return held  # a rejection (RSV-1 conflict, RSV-2 TTL): nothing is held
    reply = Preflighted(items=answer.items, totals=answer.totals, reservation=held.reply)
    return Outcome(reply, held.facts)


def _boolean_item(
    state: CustomerState, items: Sequence[HoldItem], ctx: TurnContext
) -> Rejected | None:
    """RSV-3, RSV-37: a boolean (included, not metered) feature cannot be reserved; named with
    its index, as the edge names every other bad item."""
    for index, item in enumerate(items):
        link = governing_link(state, ctx.catalog, item.feature_key)
        if link is not None and not link.metered:
            return Rejected(
                kind=RejectionKind.INVALID,
                message=(
                    f"Invalid field 'items[{index}].featureKey': '{item.feature_key}' is a "
                    "boolean feature of the plan; only metered features can be reserved."
                ),
            )
    return None


def _usage_after(decided: Sequence[ItemDecision]) -> dict[str, UsageAfter]:
    """RSV-35: per metered feature, its usage once every unit the request asks of it is used.
    The first item of a feature was decided before any of the request's units of it, so its
    usage block is the customer's own."""
    asked: dict[str, Decimal] = {}
    first: dict[str, ItemDecision] = {}
    for item in decided:
        asked[item.feature_key] = asked.get(item.feature_key, ZERO) + item.units
        first.setdefault(item.feature_key, item)
    after: dict[str, UsageAfter] = {}
    for key, item in first.items():
        usage = item.decision.usage
        if usage is None:  # not metered, or not governed: no usage to speak of
            continue
        used = usage.used + asked[key]
        remaining = None
        if usage.limit is not None:
            remaining = max(ZERO, usage.limit - used - usage.reserved)
        after[key] = UsageAfter(
            used=used, reserved=usage.reserved, limit=usage.limit, remaining=remaining
        )
    return after
