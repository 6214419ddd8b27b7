"""The dispatcher's delivery workers (WHK-D22, WHK-D26): a worker keeps taking its endpoint's
due lane heads, never more than IN_FLIGHT_MAX at once, and a retry that falls due while every
slot is busy waits in `ready` (the delivery loop must not see it as a past due time and spin),
and a lane's next head is not taken before the previous head's outcome is written to the
message log, so a crash in between can never resend them out of order."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from allotment.webhooks.dispatcher import IN_FLIGHT_MAX, Dispatcher
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import Attempted, EventLogged, MessageLog
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.sender import Response
from allotment.webhooks.signing import new_secret
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async

pytestmark = pytest.mark.anyio

ENDPOINT = Endpoint(id="ep_1", environment="test", url="http://127.0.0.1:9/h",
                    secret=new_secret(), created_at=START)  # fmt: skip


class Recording:
    """A sender that answers 204 at once and remembers what it sent, in order."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        self.sent.append(headers["webhook-id"].encode())
        await anyio.lowlevel.checkpoint()
        return Response(204, 0)


async def _no_disable(endpoint_id: str, reason: str) -> None:
    raise AssertionError("nothing answers 410 here")


def _dispatcher(sender: Recording, log: MessageLog | None = None) -> Dispatcher:
    return Dispatcher("test", lambda: {ENDPOINT.id: ENDPOINT}, _no_disable,
                      log or MessageLog(None), lambda: START, sender, None,
                      backlog_max=10_000)  # fmt: skip


def _event(n: int) -> OutboundEvent:
    return OutboundEvent(id=f"msg_{n}", type="webhook.test", timestamp=START, data={})


def _logged(n: int, lane: str) -> EventLogged:
    return EventLogged(seq=n, position=n, customer=lane, event=_event(n), endpoints=[ENDPOINT.id])


def _log(dispatcher: Dispatcher, n: int, lane: str) -> None:
    dispatcher.book.apply(_logged(n, lane))


async def test_a_retry_due_while_every_slot_is_busy_waits_in_ready() -> None:
    dispatcher = _dispatcher(Recording())
    _log(dispatcher, 1, "lane-a")
    dispatcher.book.apply(Attempted(endpoint=ENDPOINT.id, message="msg_1", at=START,
                                    status_code=500, outcome="retrying"))  # fmt: skip
    assert dispatcher.book.timed[ENDPOINT.id]  # its retry, 5 s later
    dispatcher._in_flight[ENDPOINT.id] = IN_FLIGHT_MAX  # every slot busy
    async with anyio.create_task_group() as tg:
        soonest = dispatcher._start_due(tg, START + timedelta(seconds=6))
    assert soonest is None  # not a past due time: the delivery loop sleeps
    assert "lane-a" in dispatcher.book.ready[ENDPOINT.id]  # (entries may repeat: stale ones)


async def test_workers_send_every_lane_in_order_within_the_cap() -> None:
    """Three lanes of 40 messages each: everything goes, each lane in commit order, with no
    more workers than IN_FLIGHT_MAX, and none left when done."""
    sender = Recording()
    dispatcher = _dispatcher(sender)
    for n in range(120):
        _log(dispatcher, n + 1, f"lane-{n % 3}")
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatcher._outcomes.run)  # the outcomes' writer, as `run` starts it
        dispatcher._start_due(tg, START)
        assert 0 < dispatcher._in_flight[ENDPOINT.id] <= IN_FLIGHT_MAX
        with anyio.fail_after(BOUND_S):  # a bound, not an expectation
            await wait_until_async(
                lambda: (
                    not (dispatcher._in_flight[ENDPOINT.id] or dispatcher.book.pending[ENDPOINT.id])
                ),
                "every message delivered and every worker done",
            )
        tg.cancel_scope.cancel()
    assert dispatcher._in_flight[ENDPOINT.id] == 0
    assert len(sender.sent) == 120
    for lane in range(3):
        ids = [int(s.decode().removeprefix("msg_")) for s in sender.sent]
        in_lane = [n for n in ids if (n - 1) % 3 == lane]
        assert in_lane == sorted(in_lane)
    assert all(m.status == "delivered" for m in dispatcher.book.messages.values())


async def test_whk_d22_next_head_of_a_lane_waits_for_the_previous_outcome_on_disk(
    tmp_path: Path,
) -> None:
    log = MessageLog(tmp_path)
    release = threading.Event()
    write = log._write

    def slow_write(batch: bytes, durable: bool) -> None:
        if b"delivered" in batch:  # an outcome: hold it until released
            release.wait(BOUND_S)  # released by the test; the bound only ends a failed run
        write(batch, durable)

    log._write = slow_write  # type: ignore[method-assign]
    sender = Recording()
    dispatcher = _dispatcher(sender, log)
    for n in (1, 2):
        dispatcher._record(_logged(n, "lane-a"))
    await log.sync()
    async with anyio.create_task_group() as tg:
        tg.start_soon(dispatcher._outcomes.run)  # the outcomes' writer, as `run` starts it
        dispatcher._start_due(tg, START)  # a worker takes msg_1
        for _ in range(50):
            await anyio.lowlevel.checkpoint()  # msg_1 answered, its outcome being written
        dispatcher._start_due(tg, START)  # the delivery loop, woken by anything (an ingest)
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        on_disk = (tmp_path / "messages.log").read_bytes()
        sent_before_written = list(sender.sent)
        release.set()
        with anyio.fail_after(BOUND_S):  # once written, msg_2 goes (a bound, not a target)
            await wait_until_async(lambda: len(sender.sent) == 2, "msg_2 sent")
        tg.cancel_scope.cancel()
    assert b'"delivered"' not in on_disk
    assert sent_before_written == [b"msg_1"], "msg_2 went before msg_1's outcome was written"
    assert sender.sent == [b"msg_1", b"msg_2"]
