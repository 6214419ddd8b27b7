"""A URL check_url accepts with --allow-private-webhooks, whose host the idna codec refuses
("a..b"), is a failed attempt (WHK-D24), never an exception out of the dispatcher."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.conftest import usage_renderer

pytestmark = pytest.mark.anyio


async def test_whk_d24_send_never_raises_for_a_bad_host_label() -> None:
    sender = ProtocolSender(allow_private=True, timeout_s=2)
    answer = await sender.send("http://a..b/h", {}, b"{}")
    assert answer.status_code == 0 and answer.error


async def test_dispatcher_survives_an_endpoint_with_a_bad_host_label(tmp_path: Path) -> None:
    service = WebhookService(
        tmp_path / "webhooks", ManualClock(START).now, ProtocolSender(allow_private=True),
        usage_renderer, allow_private=True,
    )  # fmt: skip
    async with service.running():
        endpoint = await service.create_endpoint("test", "http://a..b/h", (), "")
        message_id = await service.send_test("test", endpoint.id)
        book = service.outbox("test").book
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: bool(book.messages[endpoint.id, message_id].attempts), "an attempt"
            )
