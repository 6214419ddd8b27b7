"""WHK-D22: a lane's next head is not taken (nor sent) before the previous head's outcome is
written to the message log, so a crash in between can never resend them out of order."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from allotment.webhooks.dispatcher import Dispatcher
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import EventLogged, MessageLog
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.sender import Response
from allotment.webhooks.signing import new_secret
from tests.conftest import START

pytestmark = pytest.mark.anyio

ENDPOINT = Endpoint(id="ep_1", environment="test", url="http://127.0.0.1:9/h",
                    secret=new_secret(), created_at=START)  # fmt: skip


class Recording:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        self.sent.append(headers["webhook-id"])
        await anyio.lowlevel.checkpoint()
        return Response(204, 0)

    async def aclose(self) -> None:
        pass


async def _nothing(endpoint_id: str, reason: str) -> None:
    pass


async def test_whk_d22_next_head_of_a_lane_waits_for_the_previous_outcome_on_disk(
    tmp_path: Path,
) -> None:
    log = MessageLog(tmp_path)
    release = threading.Event()
    write = log._write

    def slow_write(batch: bytes, durable: bool) -> None:
        if b"delivered" in batch:  # an outcome: hold it until released
            release.wait(5)
        write(batch, durable)

    log._write = slow_write  # type: ignore[method-assign]
    sender = Recording()
    dispatcher = Dispatcher("test", lambda: {ENDPOINT.id: ENDPOINT}, _nothing, log,
                            lambda: START, sender, None, backlog_max=10_000)  # fmt: skip
    for n in (1, 2):
        event = OutboundEvent(id=f"msg_{n}", type="webhook.test", timestamp=START, data={})
        dispatcher._record(EventLogged(seq=n, position=n, customer="lane-a", event=event,
                                       endpoints=[ENDPOINT.id]))  # fmt: skip
    await log.sync()
    async with anyio.create_task_group() as tg:
        dispatcher._start_due(tg, START)  # a worker takes msg_1
        for _ in range(50):
            await anyio.lowlevel.checkpoint()  # msg_1 answered, its outcome being written
        dispatcher._start_due(tg, START)  # the delivery loop, woken by anything (an ingest)
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        on_disk = (tmp_path / "messages.log").read_bytes()
        sent_before_written = list(sender.sent)
        release.set()
    assert b'"delivered"' not in on_disk
    assert sent_before_written == ["msg_1"], "msg_2 went before msg_1's outcome was written"
