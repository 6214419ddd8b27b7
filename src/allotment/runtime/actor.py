"""A customer actor: the single writer of one customer's state.

A turn runs to completion with no await inside: apply what is due, `decide`, `evolve`. Because
the event loop runs one turn at a time, two concurrent requests for one customer behave as if
run one after the other (API-14). Actors are plain objects; no task exists per customer.
"""

from __future__ import annotations

from allotment.domain.commands import Command
from allotment.domain.context import TurnContext
from allotment.domain.decide import decide
from allotment.domain.evolve import evolve
from allotment.domain.facts import Fact
from allotment.domain.replies import Reply
from allotment.domain.schedule import due_facts, next_due
from allotment.domain.state import CustomerState

__all__ = ("CustomerActor",)

_DUE_ROUNDS_MAX = 10_000  # a bound on catch-up work in one turn; each round applies >= 1 fact


class CustomerActor:
    __slots__ = ("state",)

    def __init__(self, state: CustomerState) -> None:
        self.state = state

    def catch_up(self, ctx: TurnContext) -> list[Fact]:
        """Apply every transition due by `ctx.now` (SCH-1). Cheap when nothing is due."""
        state = self.state
        applied: list[Fact] = []
        for _ in range(_DUE_ROUNDS_MAX):
            if state.next_due_at is None or state.next_due_at > ctx.now:
                return applied
            batch = due_facts(state, ctx)
            for fact in batch:
                evolve(state, fact)
            applied += batch
            if not batch:
                state.next_due_at = next_due(state)
                if state.next_due_at is not None and state.next_due_at <= ctx.now:
                    raise AssertionError("next_due reports a transition that due_facts skips")
        raise AssertionError("catch-up did not converge")

    def turn(self, command: Command, ctx: TurnContext) -> tuple[Reply, list[Fact]]:
        """One turn: catch up, decide, evolve. Returns the reply and every fact applied."""
        facts = self.catch_up(ctx)
        outcome = decide(self.state, command, ctx)
        for fact in outcome.facts:
            evolve(self.state, fact)
        if facts:
            facts += outcome.facts
            return outcome.reply, facts
        return outcome.reply, outcome.facts
