"""The turns of one batch of events, journalled one record per customer (issue 21, item 4).

A batch's events run in the batch's order, each its own turn exactly as if it came alone
(catch-up, decide, evolve), so every reply and every fact is what sending the events one by
one would give. What is shared is the bookkeeping after the turn: the facts a customer's turns
apply go into one pending list, and `flush` journals each customer's list as one record
(`Turns.commit`: index, timers, journal append, sequences, outbox), then the environment facts
the batch raised (auto-created features, CloudEvents of no customer), in the order today's
one-by-one path appends them relative to their customer's record.

The turn's contract (docs/internals.md, "The turn") holds per stretch: the caller runs the
events and `flush` with no await in between, so nothing outside the stretch can see memory
ahead of the journal, and nothing is acknowledged before the flushed positions are durable.
A record with several events' facts is an ordinary customer record (recovery and the analytics
export read a record's facts in order), so the journal's format is unchanged; only the record
boundaries differ from the one-by-one path (fewer records, the same facts per customer, in
the same order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from allotment.domain.commands import Command
from allotment.domain.context import TurnContext
from allotment.domain.facts import EnvironmentFact, Fact
from allotment.domain.replies import Reply
from allotment.runtime.actor import CustomerActor, StateCorrupted
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.placement import TAG_MASK, IdMint
from allotment.runtime.turns import Turns

__all__ = ("PENDING", "BatchTurns")

R = TypeVar("R")
# The "position" a deferred commit returns: truthy (something will be journalled), never a
# real position; the batch awaits what `flush` returns instead.
PENDING = -1


class BatchTurns:
    """`Turns.run`, `applying`, `commit` and `commit_catalog` with the commits deferred to
    `flush`: one record per customer, whatever the number of its events in the stretch."""

    __slots__ = ("_catalog", "_mint", "_pending", "_turns")

    def __init__(self, turns: Turns, mint: IdMint | None) -> None:
        self._turns = turns
        self._mint = mint  # one shard of several: ids minted in a turn carry its tag (SCL-3)
        self._pending: dict[CustomerActor, list[Fact]] = {}  # in first-touch order
        self._catalog: list[EnvironmentFact] = []

    @property
    def turns_run(self) -> int:
        return self._turns.turns_run

    @turns_run.setter
    def turns_run(self, value: int) -> None:
        self._turns.turns_run = value

    def run(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> tuple[Reply, int]:
        """`Turns.run`, journalled at `flush`: the reply and PENDING (0 if nothing applied)."""
        return self.applying(actor, lambda applied: actor.turn(command, ctx, applied))

    def applying(self, actor: CustomerActor, step: Callable[[list[Fact]], R]) -> tuple[R, int]:
        """`Turns.applying`, but `step` appends to the customer's pending facts."""
        turns = self._turns
        turns.turns_run += 1
        if self._mint is not None:
            self._mint.tag = actor.state.id.int & TAG_MASK
        applied = self._pending.get(actor)
        if applied is None:
            applied = []
        start = len(applied)
        try:
            result = step(applied)
        except StateCorrupted as error:  # memory matches no facts: nothing more is journalled
            turns.fail(str(error))
            raise ShardUnavailable(str(error)) from error
        except Exception:
            if len(applied) > start:  # catch-up changed the state before `decide` raised
                self._pending[actor] = applied
            self.flush()
            turns.sequences.settle()
            raise
        if len(applied) == start:
            if turns.sequences.handed is not None:
                turns.sequences.settle()
            return result, 0
        self._pending[actor] = applied
        # The numbers these facts took count as journalled now (they will be, before any
        # await), so a later turn that applies nothing cannot give them back (CN-21).
        turns.sequences.observe(applied[start:])
        return result, PENDING

    def commit(self, actor: CustomerActor, facts: list[Fact]) -> int:
        """The first facts of a customer created in this stretch (created with its event)."""
        assert actor not in self._pending
        self._pending[actor] = facts
        self._turns.sequences.observe(facts)
        return PENDING

    def commit_catalog(self, fact: EnvironmentFact) -> int:
        """An environment fact, journalled after the customers' records (as one by one: an
        auto-created feature's fact follows the record of the event that created it)."""
        self._catalog.append(fact)
        return PENDING

    def flush(self) -> int:
        """Journal every customer's pending facts as one record, then the environment facts.
        Returns the last position appended (0 when nothing was).

        Raises:
            ShardUnavailable: an append failed; the shard stops serving (`Turns.commit`).
        """
        turns, last = self._turns, 0
        pending, self._pending = self._pending, {}
        catalog, self._catalog = self._catalog, []
        for actor, facts in pending.items():
            last = turns.commit(actor, facts)
        for fact in catalog:
            last = turns.commit_catalog(fact)
        return last
