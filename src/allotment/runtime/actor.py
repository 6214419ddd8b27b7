"""A customer actor: the single writer of one customer's state.

A turn runs to completion with no await inside: apply what is due, `decide`, `evolve`. Because
the event loop runs one turn at a time, two concurrent requests for one customer behave as if
run one after the other (API-14). Actors are plain objects; no task exists per customer.
"""

from __future__ import annotations

import weakref

from allotment.domain.catalog import Catalog
from allotment.domain.commands import Command, EvaluateEntitlement
from allotment.domain.context import TurnContext
from allotment.domain.decide import decide
from allotment.domain.evolve import evolve
from allotment.domain.facts import Fact
from allotment.domain.replies import Reply
from allotment.domain.schedule import apply_due
from allotment.domain.state import CustomerState

__all__ = ("CustomerActor",)


class CustomerActor:
    __slots__ = ("_last_check", "state")

    def __init__(self, state: CustomerState) -> None:
        self.state = state
        # A plain check is a pure function of the state and the catalog, and apps repeat it on
        # every request: the last answer stays until a fact is applied or the catalog changes.
        # The catalog is held weakly: catalogs replaced since must not stay alive for it.
        self._last_check: tuple[weakref.ref[Catalog], str, int, Reply] | None = None

    def catch_up(self, ctx: TurnContext) -> list[Fact]:
        """Apply every transition due by `ctx.now` (SCH-1). Cheap when nothing is due."""
        state = self.state
        if state.next_due_at is None or state.next_due_at > ctx.now:
            return []
        applied: list[Fact] = []

        def apply(fact: Fact) -> None:
            evolve(state, fact)
            applied.append(fact)

        apply_due(state, ctx, apply)
        return applied

    def turn(self, command: Command, ctx: TurnContext) -> tuple[Reply, list[Fact]]:
        """One turn: catch up, decide, evolve. Returns the reply and every fact applied."""
        facts = self.catch_up(ctx)
        if isinstance(command, EvaluateEntitlement) and command.requested_units is None:
            if not facts:
                return self._check(command, ctx), facts
            self._last_check = None
        outcome = decide(self.state, command, ctx)
        if outcome.facts or facts:
            self._last_check = None
        for fact in outcome.facts:
            evolve(self.state, fact)
        if facts:
            facts += outcome.facts
        else:
            facts = outcome.facts
        # A payment can make a period end due at once (SUB-34 catch-up); apply it in this turn.
        after = self.catch_up(ctx) if outcome.facts else []
        return outcome.reply, facts + after if after else facts

    def _check(self, command: EvaluateEntitlement, ctx: TurnContext) -> Reply:
        last, position = self._last_check, self.state.journal_position
        if (
            last is not None
            and last[0]() is ctx.catalog
            and last[1] == command.feature_key
            and last[2] == position  # replay moves it without a turn
        ):
            return last[3]
        reply = decide(self.state, command, ctx).reply
        self._last_check = (weakref.ref(ctx.catalog), command.feature_key, position, reply)
        return reply
