"""A customer actor: the single writer of one customer's state.

A turn runs to completion with no await inside: apply what is due, `decide`, `evolve`. Because
the event loop runs one turn at a time, two concurrent requests for one customer behave as if
run one after the other (API-14). Actors are plain objects; no task exists per customer.

Every fact a turn applies is recorded, as it is applied, in the caller's `applied` list. The
caller journals that list whatever happens next: an accepted reply, a rejection, or an
exception from `decide` after catch-up already changed the state (docs/internals.md, "The
turn"). Only a failure inside `evolve` itself leaves the state unlike any list of facts; it is
raised as `StateCorrupted`, and the shard stops serving until it is rebuilt from the journal.
"""

from __future__ import annotations

import uuid
import weakref
from datetime import datetime

from allotment.domain.catalog import Catalog
from allotment.domain.commands import (
    Command,
    CommitReservation,
    EvaluateEntitlement,
    ExtendReservation,
    RecordCloudEvent,
    RecordUsage,
    ReleaseReservation,
    Reserve,
)
from allotment.domain.context import TurnContext
from allotment.domain.decide import decide
from allotment.domain.evolve import evolve
from allotment.domain.facts import Fact
from allotment.domain.invoice_numbers import invoice_number_facts
from allotment.domain.notifications import notifications
from allotment.domain.replies import Reply
from allotment.domain.schedule import apply_due
from allotment.domain.state import CustomerState, Subscription

__all__ = ("CustomerActor", "StateCorrupted")


class StateCorrupted(RuntimeError):
    """`evolve` raised while applying a fact: the customer's state in memory is now partly
    changed, unlike what any sequence of journalled facts would give. Its shard must stop
    serving and be rebuilt from the snapshot and the journal. The cause is in __cause__."""

    def __init__(self, customer_id: uuid.UUID, fact: Fact) -> None:
        super().__init__(f"applying {type(fact).__name__} to customer {customer_id} failed")
        self.customer_id = customer_id


class CustomerActor:
    __slots__ = ("_last_check", "state")

    def __init__(self, state: CustomerState) -> None:
        self.state = state
        # A plain check is a pure function of the state and the catalog, and apps repeat it on
        # every request: the last answer stays until a fact is applied or the catalog changes.
        # The catalog is held weakly: catalogs replaced since must not stay alive for it.
        self._last_check: tuple[weakref.ref[Catalog], str, int, Reply] | None = None

    def _apply(self, fact: Fact, applied: list[Fact]) -> None:
        try:
            evolve(self.state, fact)
        except Exception as error:
            raise StateCorrupted(self.state.id, fact) from error
        applied.append(fact)
        self._last_check = None

    def catch_up(self, ctx: TurnContext, applied: list[Fact]) -> None:
        """Apply every transition due by `ctx.now` (SCH-1), and the notifications they raise,
        recording each fact in `applied`. Cheap when nothing is due."""
        state = self.state
        if state.next_due_at is None or state.next_due_at > ctx.now:
            return
        before, start = dict(state.subscriptions), len(applied)
        self._catch_up(ctx, applied)
        self._notify(before, ctx, applied, start)

    def _catch_up(self, ctx: TurnContext, applied: list[Fact]) -> None:
        state = self.state
        if state.next_due_at is None or state.next_due_at > ctx.now:
            return
        apply_due(state, ctx, lambda fact: self._apply(fact, applied))

    def _notify(
        self,
        before: dict[uuid.UUID, Subscription],
        ctx: TurnContext,
        applied: list[Fact],
        start: int,
    ) -> None:
        """Number the invoices the facts applied since `start` finalized (CN-20), decide the
        notifications of those facts, and apply both in the same turn, so they are journalled
        with their cause (WHK-E36)."""
        if len(applied) > start:
            for fact in invoice_number_facts(self.state, applied[start:], ctx):
                self._apply(fact, applied)
            for fact in notifications(before, self.state, applied[start:], ctx):
                self._apply(fact, applied)

    def turn(self, command: Command, ctx: TurnContext, applied: list[Fact]) -> Reply:
        """One turn: catch up, decide, evolve. Every fact applied is appended to `applied`,
        even when this raises; the caller journals them.

        Raises:
            StateCorrupted: `evolve` failed; the state must not be served any more.
            Exception: `decide` failed; the state is exactly `applied` applied.
        """
        if isinstance(command, EvaluateEntitlement) and command.requested_units is None:
            self.catch_up(ctx, applied)  # a plain check copies nothing unless something is due
            return self._check(command, ctx)
        if type(command) in _LEAN:
            return self._lean(command, ctx, applied)
        due = self.state.next_due_at
        if type(command) is RecordCloudEvent and (due is None or due > ctx.now):
            return self._keep(command, ctx, applied)
        return self.general_turn(command, ctx, applied)

    def general_turn(self, command: Command, ctx: TurnContext, applied: list[Fact]) -> Reply:
        """The turn any command can take. The shortcuts `turn` takes for the hot paths (a
        check, `_lean`, `_keep`) must apply the same facts and give the same reply as this:
        tests/domain/test_reservation_machine.py runs every event and reservation command
        both ways and compares them."""
        before, start = dict(self.state.subscriptions), len(applied)
        self._catch_up(ctx, applied)
        try:
            outcome = decide(self.state, command, ctx)
        except Exception:
            self._notify(before, ctx, applied, start)  # catch-up facts are journalled anyway
            raise
        for fact in outcome.facts:
            self._apply(fact, applied)
        if outcome.facts:  # a payment can make a period end due at once (SUB-34 catch-up)
            self._catch_up(ctx, applied)
        self._notify(before, ctx, applied, start)
        return outcome.reply

    def _lean(self, command: Command, ctx: TurnContext, applied: list[Fact]) -> Reply:
        """The turn of an event or of a reservation command, the hot paths (`_LEAN`). Their
        own facts (usage, credit debits, the thresholds reached (WHK-E1), holds and their
        settlements) never change a subscription nor finalize an invoice, so the
        subscriptions need no copy and there is no invoice to number: the catch-up before
        them notifies its own facts, and only credit debits can cross a pool's level."""
        self.catch_up(ctx, applied)
        start = len(applied)
        outcome = decide(self.state, command, ctx)
        for fact in outcome.facts:
            self._apply(fact, applied)
        if len(outcome.facts) > 1:  # credit debits can cross a pool's level (WHK-E10)
            # (`notifications` returns at once when the facts are only usage and holds)
            subscriptions = self.state.subscriptions  # unchanged by these facts: the "before"
            for fact in notifications(subscriptions, self.state, applied[start:], ctx):
                self._apply(fact, applied)
        if outcome.facts:  # as in `turn`: whatever became due
            self.catch_up(ctx, applied)
        return outcome.reply

    def _keep(self, command: RecordCloudEvent, ctx: TurnContext, applied: list[Fact]) -> Reply:
        """A CloudEvent's own turn with nothing due, which comes before every CloudEvent's usage
        turn. Its one fact, the event as received (OM-8), changes nothing `evolve` keeps, so
        nothing becomes due after it and no notification or invoice number can follow from
        it: the full turn would find nothing to catch up or notify, at the cost of a copy of
        the subscriptions and two scans of the facts."""
        outcome = decide(self.state, command, ctx)
        for fact in outcome.facts:
            self._apply(fact, applied)
        return outcome.reply

    def remembered_check(self, feature_key: str, catalog: Catalog, now: datetime) -> Reply | None:
        """The answer a plain check of `feature_key` at `now` would get, when it is the last
        one given and still true: nothing applied since, the same catalog, and nothing due by
        `now` (a due transition would be applied first). None: the check must run its turn."""
        due = self.state.next_due_at
        if due is not None and due <= now:
            return None
        return self._remembered(feature_key, catalog)

    def _remembered(self, feature_key: str, catalog: Catalog) -> Reply | None:
        last = self._last_check
        if (
            last is not None
            and last[0]() is catalog
            and last[1] == feature_key
            and last[2] == self.state.journal_position  # replay moves it without a turn
        ):
            return last[3]
        return None

    def _check(self, command: EvaluateEntitlement, ctx: TurnContext) -> Reply:
        remembered = self._remembered(command.feature_key, ctx.catalog)
        if remembered is not None:
            return remembered
        reply = decide(self.state, command, ctx).reply
        position = self.state.journal_position
        self._last_check = (weakref.ref(ctx.catalog), command.feature_key, position, reply)
        return reply


_LEAN = frozenset((RecordUsage, Reserve, CommitReservation, ReleaseReservation, ExtendReservation))
"""Commands whose facts never change a subscription nor finalize an invoice (`_lean`); exact
types: `Preflight` may reserve, but is not a hot path and keeps the general turn."""
