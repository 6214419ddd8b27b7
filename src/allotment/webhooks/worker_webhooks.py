"""A server's webhooks with delivery in its worker process (WHK-D50..WHK-D56): the outboxes
its shards hand their journal records to, and the admin API's `WebhookAdmin`, which reaches
the worker's service as a Ray front door reaches its hosts' (`RemoteWebhooks`, one host)."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Protocol

import anyio
import msgspec
from anyio.abc import TaskGroup

from allotment.config import Settings
from allotment.domain.facts import Fact, NotificationRaised
from allotment.persistence.errors import JournalUnavailable
from allotment.webhooks.dispatcher import INCOMING_MAX
from allotment.webhooks.ports import EndpointStatistics
from allotment.webhooks.remote import RemoteWebhooks
from allotment.webhooks.worker_frames import (
    CLOCK,
    RECORDS,
    Clock,
    Handed,
    HandedRecord,
    Logged,
    frame,
)
from allotment.webhooks.worker_link import WorkerLink

__all__ = ("Link", "WorkerOutbox", "WorkerWebhooks", "Writer")

Durable = Callable[[int], Awaitable[None]]
_encode = msgspec.msgpack.Encoder().encode


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class Link(Protocol):
    """What an outbox needs of the worker link (`WorkerLink`; a test's double)."""

    running: bool
    generation: int

    def need(self) -> None: ...

    async def connection(self) -> tuple[Writer, int]: ...


class WorkerOutbox:
    """One environment's and shard's `NotificationOutbox`: its records' notifications go to
    the worker once durable, and stay here until the worker reports them logged."""

    def __init__(
        self, link: Link, environment: str, shard: int, incoming_max: int = INCOMING_MAX
    ) -> None:
        self._link = link
        self._environment = environment
        self._shard = shard
        # WHK-D46 across the process boundary: the records the worker has not reported logged
        # are kept here, so this is the queue to bound; the worker's own dispatcher queue is
        # bounded by it, as it only ever holds records still in `_unlogged`.
        self.incoming_max = incoming_max
        self._queue: list[tuple[HandedRecord, Durable | None]] = []  # not handed yet
        self._unlogged: deque[HandedRecord] = deque()  # handed, not reported logged
        self._generation = 0  # the worker `_unlogged` went to
        self._wakeup = asyncio.Event()
        self._logged = asyncio.Event()  # set (and replaced) at each report

    def committed(
        self,
        position: int,
        customer_id: uuid.UUID,
        external_id: str | None,
        facts: Sequence[Fact],
        durable: Durable | None,
    ) -> None:
        notices = [fact for fact in facts if isinstance(fact, NotificationRaised)]
        if notices:  # most records have none: one isinstance per fact is all they cost
            self._queue.append((HandedRecord(position, customer_id, external_id, notices),
                                durable))  # fmt: skip
            self._wakeup.set()
            self._link.need()

    @property
    def full(self) -> bool:
        """WHK-D46: the records not yet handed and those handed but not reported logged
        reached `incoming_max`; the shard refuses changes until the worker reports some.
        A worker that is down or restarting fills it too: at the bound ingest waits for
        the worker, rather than the server's memory holding its backlog without end."""
        return len(self._queue) + len(self._unlogged) >= self.incoming_max

    async def logged_through(self, position: int) -> None:
        while self._link.running and self._holds_through(position):
            await self._logged.wait()

    def _holds_through(self, position: int) -> bool:
        return bool(
            (self._queue and self._queue[0][0].position <= position)
            or (self._unlogged and self._unlogged[0].position <= position)
        )

    def acked(self, position: int) -> None:
        """The worker's log holds every record up to `position` handed to it."""
        while self._unlogged and self._unlogged[0].position <= position:
            self._unlogged.popleft()
        self._logged.set()
        self._logged = asyncio.Event()

    def reconnected(self) -> None:
        """A new worker: what the last one did not report logged goes to it first."""
        self._wakeup.set()

    async def ship_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue or (self._unlogged and self._generation != self._link.generation):
                await self._ship()

    async def _ship(self) -> None:
        """Hand the worker the queued records once durable, after those a previous worker did
        not report logged (WHK-D52). Until reported, they stay in `_unlogged`: a write to a
        worker that has just died is handed again to the next."""
        count = len(self._queue)  # `committed` only appends meanwhile
        records = await _durable(self._queue[:count])
        writer, generation = await self._link.connection()
        if generation != self._generation:
            records = [*self._unlogged, *records]
            self._unlogged.clear()
            self._generation = generation
        del self._queue[:count]
        if not records:  # every record dropped (the journal failed): waiters look again
            self.acked(0)
        self._unlogged.extend(records)
        if records:
            handed = Handed(self._environment, self._shard, records)
            writer.write(frame(RECORDS, _encode(handed)))
            try:  # a worker slower than the journal holds the records here, not in memory
                await writer.drain()
            except ConnectionError:  # it died: the next one gets them (`_unlogged`)
                return


async def _durable(batch: list[tuple[HandedRecord, Durable | None]]) -> list[HandedRecord]:
    """The records of `batch` that are durable, once they are: one wait for the last record of
    each journal (every earlier one is durable with it) unless that journal failed; then each
    record is asked, and those that never became durable are dropped (never acknowledged: the
    journal's rebuild hands over what is on disk)."""
    last: dict[int, tuple[Durable, int]] = {}
    for record, durable in batch:
        if durable is not None:
            last[id(durable)] = (durable, record.position)
    try:
        for durable, position in last.values():
            await durable(position)
    except JournalUnavailable:
        return [record for record, durable in batch if await _is_durable(record, durable)]
    return [record for record, _ in batch]


async def _is_durable(record: HandedRecord, durable: Durable | None) -> bool:
    if durable is None:
        return True
    try:
        await durable(record.position)
    except JournalUnavailable:
        return False
    return True


class WorkerWebhooks(RemoteWebhooks):
    """`webhooks.ports.WebhookAdmin` and the outboxes of a server whose delivery runs in its
    worker. `now` is the server's clock (wiring sets it once the system has one); with
    `--clock manual` the worker follows its moves."""

    def __init__(self, settings: Settings, statistics_every_s: float = 0.5) -> None:
        self._link = WorkerLink(settings, self._acked, self._reconnected)
        super().__init__([self._link.call], statistics_every_s)
        self._outboxes: dict[tuple[str, int], WorkerOutbox] = {}
        self._task_group: TaskGroup | None = None

    @property
    def now(self) -> Callable[[], datetime] | None:
        return self._link.now

    @now.setter
    def now(self, now: Callable[[], datetime]) -> None:
        self._link.now = now

    def outbox(self, environment: str, shard: int = 0) -> WorkerOutbox:
        outbox = self._outboxes.get((environment, shard))
        if outbox is None:
            outbox = self._outboxes[environment, shard] = WorkerOutbox(self._link, environment,
                                                                       shard)  # fmt: skip
            if self._task_group is not None:
                self._task_group.start_soon(outbox.ship_forever)
        return outbox

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg, self._link.serving(tg):
            self._task_group = tg
            for outbox in self._outboxes.values():
                tg.start_soon(outbox.ship_forever)
            try:
                async with super().running():
                    yield
            finally:
                self._task_group = None
                tg.cancel_scope.cancel()

    async def statistics_now(self, bound_s: float) -> list[EndpointStatistics] | None:
        """The worker's rows as its dispatchers hold them now (WHK-D28a), asked over the link
        and waited for at most `bound_s`; None when it did not answer in time. The answer also
        refreshes what `statistics()` (/metrics, the admin statistics) shows."""
        rows: list[EndpointStatistics] | None = await self._link.statistics_now(bound_s)
        if rows is not None:
            self._statistics[0] = rows
        return rows

    def wake(self) -> None:
        """The server's clock moved: the worker's retries due by then go now."""
        now = self._link.now
        if now is not None:
            self._link.write(CLOCK, _encode(Clock(now())))

    def _acked(self, logged: Logged) -> None:
        outbox = self._outboxes.get((logged.environment, logged.shard))
        if outbox is not None:
            outbox.acked(logged.position)

    def _reconnected(self) -> None:
        for outbox in self._outboxes.values():
            outbox.reconnected()
