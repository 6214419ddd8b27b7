"""Safety at send time (WHK-D31, WHK-D23, WHK-D24): the address a host resolves to is checked
at each new connection, not only when the URL is set, so a DNS change cannot aim a webhook at
a private address; and the lean sender keeps the semantics of the httpx one."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService
from allotment.webhooks.signing import new_secret, signed_headers
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.conftest import usage_renderer
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio


async def test_whk_d31_a_host_resolving_to_loopback_is_refused_at_send(receiver: Receiver) -> None:
    """WHK-D31: `localhost` resolves to 127.0.0.1: without --allow-private-webhooks the send
    is refused before any connection (the receiver sees nothing); with it, it is sent."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    refusing = ProtocolSender(allow_private=False)
    answer = await refusing.send(url, {"content-type": "application/json"}, b"{}")
    await refusing.aclose()
    assert answer.status_code == 0 and "private address 127.0.0.1" in answer.error
    literal = await ProtocolSender(allow_private=False).send(receiver.url, {}, b"{}")
    assert literal.status_code == 0 and "private address 127.0.0.1" in literal.error
    assert receiver.deliveries == []
    receiver.secrets = [new_secret()]
    body = b'{"type": "webhook.test", "timestamp": "2025-01-15T10:30:00Z", "data": {}}'
    headers = signed_headers(receiver.secrets, "msg_1", int(time.time()), body)
    allowing = ProtocolSender(allow_private=True)
    assert (await allowing.send(url, headers, body)).status_code == 200
    await allowing.aclose()
    assert len(receiver.deliveries) == 1


async def test_whk_d31_an_endpoint_whose_dns_changed_gets_a_logged_refusal(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D31: an endpoint accepted when its URL was set (here: the set-time check allowed
    it, as a public address would have been) is refused at send once its host resolves to
    127.0.0.1: the attempt is logged with why, retried later, and nothing reaches it."""
    clock = ManualClock(START)
    service = WebhookService(
        tmp_path / "webhooks", clock.now, ProtocolSender(allow_private=False), usage_renderer,
        allow_private=True,
    )  # fmt: skip
    async with service.running():
        url = receiver.url.replace("127.0.0.1", "localhost")
        endpoint = await service.create_endpoint("test", url, (), "")
        message_id = await service.send_test("test", endpoint.id)
        book = service.outbox("test").book
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: bool(book.messages[endpoint.id, message_id].attempts), "an attempt"
            )
        [attempt] = book.messages[endpoint.id, message_id].attempts
    assert attempt.status_code == 0 and attempt.outcome == "retrying"
    assert "private address 127.0.0.1" in attempt.error
    assert receiver.deliveries == []
