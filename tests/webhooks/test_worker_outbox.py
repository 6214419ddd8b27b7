"""The server's side of the delivery worker, without a process (docs/webhooks.md WHK-D51,
WHK-D52): what a record hands over and when, what goes to a new worker first, and when a
checkpoint may go on. A double of the link records every frame written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import anyio
import msgspec
import pytest

from allotment.domain.facts import Fact, NotificationRaised
from allotment.domain.notification_types import UsageThresholdCrossed
from allotment.persistence.errors import JournalUnavailable
from allotment.webhooks.worker_frames import RECORDS, Handed
from allotment.webhooks.worker_webhooks import WorkerOutbox, Writer
from tests.waiting import BOUND_S, wait_until_async

pytestmark = pytest.mark.anyio
AT = datetime(2025, 1, 15, tzinfo=UTC)
CUSTOMER = uuid.uuid4()


class _Link:
    def __init__(self) -> None:
        self.running = True
        self.generation = 1
        self.frames: list[tuple[int, Handed]] = []  # (generation, frame)
        self.needed = 0  # calls of `need`: the worker asked for (WHK-D50)
        self.drained = 0  # calls of `drain`: written frames flushed before the next

    def need(self) -> None:
        self.needed += 1

    async def connection(self) -> tuple[Writer, int]:
        return self, self.generation

    def write(self, data: bytes) -> None:
        assert data[4:5] == RECORDS
        self.frames.append((self.generation, msgspec.msgpack.decode(data[5:], type=Handed)))

    async def drain(self) -> None:
        self.drained += 1

    def positions(self) -> list[tuple[int, list[int]]]:
        return [(g, [r.position for r in handed.records]) for g, handed in self.frames]


def _notice() -> NotificationRaised:
    return NotificationRaised(
        at=AT, notification_id=uuid.uuid4(),
        payload=UsageThresholdCrossed(
            subscription_id=uuid.uuid4(), plan_key="free", feature_key="api_calls", percent=80,
            period_start=AT, period_end=AT, used=Decimal(850), limit=Decimal(1000),
        ),
    )  # fmt: skip


class _Journal:
    """Positions become durable when the test says; a failed journal refuses the rest."""

    def __init__(self) -> None:
        self.durable = 0
        self.failed = False
        self._moved = anyio.Event()

    async def wait_durable(self, position: int) -> None:
        while self.durable < position:
            if self.failed:
                raise JournalUnavailable("failed")
            await self._moved.wait()

    def make_durable(self, position: int) -> None:
        self.durable = position
        self._moved.set()
        self._moved = anyio.Event()

    def fail(self) -> None:
        self.failed = True
        self._moved.set()


async def _handed(link: _Link, count: int) -> None:
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: len(link.frames) >= count, f"{count} frames")


async def test_records_go_once_durable_and_a_checkpoint_waits_for_the_worker() -> None:
    """WHK-D51: a record without notifications hands nothing; one with notifications goes to
    the worker only once durable, with its notification facts only; `logged_through` returns
    once the worker has reported it logged."""
    link, journal = _Link(), _Journal()
    outbox = WorkerOutbox(link, "test", 0)
    plain: list[Fact] = []
    notice = _notice()
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.ship_forever)
        outbox.committed(1, CUSTOMER, "acme", plain, journal.wait_durable)
        assert link.needed == 0  # WHK-D50: a record that notifies nothing starts no worker
        outbox.committed(2, CUSTOMER, "acme", [notice], journal.wait_durable)
        assert link.needed == 1
        await anyio.wait_all_tasks_blocked()
        assert link.frames == []  # not durable yet
        journal.make_durable(2)
        await _handed(link, 1)
        with anyio.fail_after(BOUND_S):
            await wait_until_async(lambda: link.drained >= 1, "the frame drained")
        (record,) = link.frames[0][1].records
        assert (record.position, record.external_id, record.notices) == (2, "acme", [notice])
        logged = anyio.Event()

        async def checkpoint() -> None:
            await outbox.logged_through(2)
            logged.set()

        tg.start_soon(checkpoint)
        await anyio.wait_all_tasks_blocked()
        assert not logged.is_set()  # handed, not reported logged
        outbox.acked(2)
        with anyio.fail_after(BOUND_S):
            await logged.wait()
        tg.cancel_scope.cancel()


async def test_a_new_worker_gets_what_the_last_did_not_log_first_in_order() -> None:
    """WHK-D52: records handed to a worker that never reported them logged go to the next
    worker first, in commit order, before the records committed since."""
    link, journal = _Link(), _Journal()
    outbox = WorkerOutbox(link, "test", 0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.ship_forever)
        for position in (1, 2, 3):
            outbox.committed(position, CUSTOMER, None, [_notice()], None)
        await _handed(link, 1)
        outbox.acked(1)  # the first worker logged 1, then died
        link.generation = 2
        outbox.committed(4, CUSTOMER, None, [_notice()], journal.wait_durable)
        journal.make_durable(4)
        await _handed(link, 2)
        outbox.reconnected()  # a third worker, nothing reported since
        link.generation = 3
        outbox.reconnected()
        await _handed(link, 3)
        tg.cancel_scope.cancel()
    assert link.positions() == [(1, [1, 2, 3]), (2, [2, 3, 4]), (3, [2, 3, 4])]


async def test_records_the_journal_never_made_durable_are_not_handed() -> None:
    """WHK-D51 with a failed journal: a record that never became durable was never
    acknowledged, so it is not handed, and a checkpoint's wait does not hang on it."""
    link, journal = _Link(), _Journal()
    outbox = WorkerOutbox(link, "test", 0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.ship_forever)
        outbox.committed(1, CUSTOMER, None, [_notice()], journal.wait_durable)
        outbox.committed(2, CUSTOMER, None, [_notice()], journal.wait_durable)
        journal.make_durable(1)
        journal.fail()
        await _handed(link, 1)
        assert link.positions() == [(1, [1])]
        outbox.acked(1)
        with anyio.fail_after(BOUND_S):
            await outbox.logged_through(2)
        tg.cancel_scope.cancel()


async def test_the_records_the_worker_has_not_logged_are_bounded() -> None:
    """WHK-D46 with the worker: a record with notifications counts toward the bound from
    `committed` until the worker reports it logged, whether it waits for the journal, for
    the socket or for the worker's log; a record without any never counts. At the bound the
    outbox is `full` (the shard refuses changes); a report makes room again."""
    link, journal = _Link(), _Journal()
    outbox = WorkerOutbox(link, "test", 0, incoming_max=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.ship_forever)
        for position in (1, 2, 3):
            outbox.committed(position, CUSTOMER, None, [], journal.wait_durable)
        assert not outbox.full  # nothing to notify: nothing is kept
        outbox.committed(4, CUSTOMER, None, [_notice()], journal.wait_durable)
        outbox.committed(5, CUSTOMER, None, [_notice()], journal.wait_durable)
        assert not outbox.full
        outbox.committed(6, CUSTOMER, None, [_notice()], journal.wait_durable)
        assert outbox.full  # three waiting for the journal
        journal.make_durable(6)
        await _handed(link, 1)
        assert outbox.full  # handed, not reported logged: still held here
        outbox.acked(4)
        assert not outbox.full
        outbox.committed(7, CUSTOMER, None, [_notice()], journal.wait_durable)
        assert outbox.full
        link.generation = 2  # a new worker: the unlogged go to it, and still count
        outbox.reconnected()
        journal.make_durable(7)
        await _handed(link, 2)
        assert link.positions()[-1] == (2, [5, 6, 7])
        assert outbox.full
        outbox.acked(7)
        assert not outbox.full
        tg.cancel_scope.cancel()
