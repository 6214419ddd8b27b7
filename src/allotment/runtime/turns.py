"""The transactional core of a shard: admit, run one turn, journal what it applied, wait until
durable; and the failure state that stops a shard whose memory may be ahead of its journal.

The contract is written in docs/internals.md ("The turn"): whatever a turn applied is appended
to the journal before the turn returns or raises, and a failure between applying a fact and
appending it fails the shard, which then serves nothing until it is rebuilt from disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from allotment.domain.commands import Command
from allotment.domain.context import TurnContext
from allotment.domain.facts import EnvironmentFact, Fact
from allotment.domain.replies import Decision, Reply
from allotment.persistence.errors import JournalUnavailable
from allotment.persistence.ports import Journal
from allotment.persistence.store_ports import NotificationOutbox
from allotment.runtime.actor import CustomerActor, StateCorrupted
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.errors import Overloaded, ShardUnavailable
from allotment.runtime.numbering import Sequences
from allotment.runtime.placement import TAG_MASK, IdMint
from allotment.runtime.timers import Timers

__all__ = ("TurnSettings", "Turns")

logger = logging.getLogger("allotment.shard")
R = TypeVar("R")


class TurnSettings(Protocol):
    journal_pending_bytes_max: int


class Turns:
    """Runs turns against one journal; owned by one shard."""

    __slots__ = (
        "_directory", "_journal", "_mint", "_settings", "_timers", "failure", "outbox", "sequences",
        "turns_run",
    )  # fmt: skip

    def __init__(
        self,
        journal: Journal,
        directory: CustomerDirectory,
        timers: Timers,
        settings: TurnSettings,
        outbox: NotificationOutbox | None = None,
        sequences: Sequences | None = None,
        mint: IdMint | None = None,
    ) -> None:
        self._journal = journal
        self._mint = mint  # one shard of several: ids minted in a turn carry its tag (SCL-3)
        # CN-21: the numbers turns take; told what each commit journalled, and after a turn
        # that journalled nothing, that nothing it handed out was used.
        self.sequences = sequences or Sequences()
        self.outbox = outbox  # gets every customer record journalled (webhooks, issue 15)
        self._directory = directory
        self._timers = timers
        self._settings = settings
        # Set once memory may differ from the journal; from then on the shard answers nothing
        # (ShardUnavailable) until the system rebuilds it from disk.
        self.failure: str | None = None
        self.turns_run = 0  # every turn begun, read or change (`/metrics`: turns per second)

    @property
    def journal(self) -> Journal:
        return self._journal

    # -- admission and failure ---------------------------------------------------------------

    def admit(self, *, write: bool) -> None:
        """Refuse before any turn runs: a failed shard serves nothing, and a change waits while
        the journal has too many bytes waiting for the disk (nothing has changed yet).

        Raises:
            ShardUnavailable: memory may differ from the journal; wait for the rebuild.
            Overloaded: the journal's backlog is over its bound, or the records waiting for
                the webhook outbox's log are (WHK-D46).
        """
        if self.failure is None and self._journal.failure is not None:
            self.notice_journal_failure()
        if self.failure is not None:
            raise ShardUnavailable(self.failure)
        if write:
            if self._journal.pending_bytes > self._settings.journal_pending_bytes_max:
                raise Overloaded("too many changes are waiting for the disk; retry shortly")
            if self.outbox is not None and self.outbox.full:
                raise Overloaded("too many notifications are waiting to be logged; retry shortly")

    def notice_journal_failure(self) -> None:
        """Fail the shard if its journal failed (a write nobody was waiting for can fail)."""
        if self.failure is None and self._journal.failure is not None:
            self.fail(f"journal write failed: {self._journal.failure}")

    def fail(self, reason: str) -> None:
        """Stop serving: from now on every call raises ShardUnavailable. Idempotent."""
        if self.failure is None:
            self.failure = reason
            logger.error("shard stopped serving until it is rebuilt: %s", reason)

    async def durable(self, position: int) -> None:
        """Wait until `position` is durable.

        Raises:
            ShardUnavailable: the journal failed first; the change is not acknowledged.
        """
        try:
            await self._journal.wait_durable(position)
        except JournalUnavailable as error:
            self.fail(f"journal write failed: {error.__cause__ or error}")
            raise ShardUnavailable(self.failure or str(error)) from error

    # -- turns ---------------------------------------------------------------------------------

    def run(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> tuple[Reply, int]:
        """One turn, journalled whatever its outcome. Returns the reply and the position to
        await (0 when nothing was applied)."""
        return self.applying(actor, lambda applied: actor.turn(command, ctx, applied))

    async def turn(self, actor: CustomerActor, command: Command, ctx: TurnContext) -> Reply:
        """`run`, then wait until durable unless the reply is a read's (reads never wait on
        their own catch-up)."""
        reply, position = self.run(actor, command, ctx)
        if position and not isinstance(reply, Decision):
            await self.durable(position)
        return reply

    def answered(self, actor: CustomerActor) -> None:
        """Count a turn answered without running, as a repeated check is (the actor's last
        answer still holds): what `applying` does before its step, and nothing applied."""
        self.turns_run += 1
        if self._mint is not None:
            self._mint.tag = actor.state.id.int & TAG_MASK

    def applying(self, actor: CustomerActor, step: Callable[[list[Fact]], R]) -> tuple[R, int]:
        """Run `step`, which applies facts to `actor` and lists them, and journal every fact it
        applied before this returns or raises. Returns its result and the position to await."""
        applied: list[Fact] = []
        self.turns_run += 1
        if self._mint is not None:
            self._mint.tag = actor.state.id.int & TAG_MASK
        try:
            result = step(applied)
        except StateCorrupted as error:
            self.fail(str(error))
            raise ShardUnavailable(str(error)) from error
        except Exception:
            if applied:  # catch-up changed the state before `decide` raised: keep it
                self.commit(actor, applied)
            self.sequences.settle()
            raise
        if not applied:
            if self.sequences.handed is not None:  # a check hands out none: no call
                self.sequences.settle()
            return result, 0
        return result, self.commit(actor, applied)

    def commit(self, actor: CustomerActor, facts: list[Fact]) -> int:
        """Index and journal facts already applied to `actor`. A failure here leaves memory
        ahead of the journal, so the shard stops serving."""
        try:
            state = actor.state
            self._directory.index(state, facts)
            self._timers.schedule(state.id, state.next_due_at)
            position = self._journal.append(state.id, facts)
            self.sequences.observe(facts)
        except Exception as error:
            self.fail(f"journalling {len(facts)} applied facts failed: {error!r}")
            raise ShardUnavailable(self.failure or "") from error
        actor.state.journal_position = position
        if self.outbox is not None:  # sent only once durable: the outbox waits, not the turn
            self.outbox.committed(
                position, state.id, state.external_id, facts, self._journal.wait_durable
            )
        return position

    def commit_catalog(self, fact: EnvironmentFact) -> int:
        """Journal an environment fact: a catalog change, or a payment no customer owns
        (applied by the caller right after)."""
        try:
            return self._journal.append_catalog(fact)
        except Exception as error:
            self.fail(f"journalling an environment fact failed: {error!r}")
            raise ShardUnavailable(self.failure or "") from error
