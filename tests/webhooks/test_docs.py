"""docs/webhooks.md's examples are tested (STYLE habit 24): every JSON example has exactly
the keys the real renderer gives its type, every event type has one, and the Python receiver
runs, as written, against a real delivery from the app."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from litestar.testing import TestClient

from allotment.domain.commands import HoldItem, Reserve, Tick
from allotment.http.fast_path import FastPath
from allotment.runtime.clock import ManualClock
from allotment.webhooks.payloads import EVENT_TYPES, OutboundEvent, outbound_events
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService
from tests.conftest import START
from tests.domain.harness import D, World
from tests.domain.reservation_world import reservation_world
from tests.http.helpers import A, create_customer, event, ok, subscribe
from tests.waiting import POLL_S, wait_until
from tests.webhooks.test_payloads import scenario

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
W = f"{A}/webhooks"


def _examples() -> list[dict[str, Any]]:
    """Every JSON object of the ```json blocks, in order (a block may hold several)."""
    examples: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    for block in re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.DOTALL):
        at = 0
        while (at := _skip_space(block, at)) < len(block):
            example, at = decoder.raw_decode(block, at)
            examples.append(example)
    return examples


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _paths(value: Any, prefix: str = "") -> frozenset[str]:
    """Every key's path: `a.b` in objects, `a[].b` in the objects of a list."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            paths.add(prefix + key)
            paths |= _paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            paths |= _paths(item, prefix.removesuffix(".") + "[].")
    return frozenset(paths)


def _named_hold_expired() -> World:
    """A hold made for a named event, expired: its notice carries `eventName` (the payloads
    scenario's hold names none)."""
    world = reservation_world()
    hold = (HoldItem(feature_key="chat", units=D(40)),)
    world.run(Reserve(reservation_id="r1", items=hold, ttl_seconds=60, event_name="llm_call"))
    world.advance(61)
    world.run(Tick())
    return world


async def _test_event() -> OutboundEvent:
    """The `webhook.test` event as the dispatcher makes it (nothing is sent: not running)."""
    service = WebhookService(None, ManualClock(START).now, ProtocolSender(allow_private=True),
                             outbound_events, allow_private=True)  # fmt: skip
    endpoint = await service.create_endpoint("test", "http://127.0.0.1:9/hooks", (), "")
    return await service.outbox("test").send_test(endpoint)


def _rendered() -> dict[str, list[frozenset[str]]]:
    """The key paths of each rendered event, by type: the domain scenario that raises every
    notification type (test_payloads), through the real renderer, and a test event."""
    shapes: dict[str, list[frozenset[str]]] = {}
    worlds = [*scenario(), _named_hold_expired()]
    events = [e for w in worlds for e in outbound_events(w.state.id, "c1", w.facts)]
    events.append(anyio.run(_test_event))
    for rendered in events:
        shapes.setdefault(rendered.type, []).append(_paths(rendered.data))
    return shapes


def test_every_event_type_has_an_example_with_the_wire_keys() -> None:
    """WHK-E39, issue 15 item 3: each event type has an example of its own, `{type,
    timestamp, data}` and nothing else."""
    examples = _examples()
    assert {e["type"] for e in examples} == EVENT_TYPES
    assert {tuple(sorted(e)) for e in examples} == {("data", "timestamp", "type")}


def test_every_json_example_has_exactly_the_keys_the_renderer_gives_its_type() -> None:
    """Each example's `data` has the key paths of an event the real renderer produced for its
    type: no key the code does not send, none it always sends missing, and optional ones
    only as some real event has them."""
    shapes = _rendered()
    for example in _examples():
        paths = _paths(example["data"])
        real = shapes[example["type"]]
        closest = min(real, key=lambda shape: len(shape ^ paths))
        assert paths in real, (
            example["type"], f"only in the docs: {sorted(paths - closest)}",
            f"only in the rendered event: {sorted(closest - paths)}",
        )  # fmt: skip


# -- the receiver example ----------------------------------------------------------------------


def _receiver_example() -> str:
    section = DOCS.read_text().split("## Receiving in Python", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    return str(code)


@contextmanager
def _serving(namespace: dict[str, Any]) -> Iterator[str]:
    """The example's own server class and handler on 127.0.0.1; its URL."""
    server = namespace["HTTPServer"](("127.0.0.1", 0), namespace["Hooks"])
    # poll_interval: `shutdown` waits for the serve loop's next look (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/allotment"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("shards", [1], ids=["one"])
def test_the_python_receiver_example_handles_a_real_delivery(
    hooked: TestClient[FastPath], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs' receiver, run as written with the endpoint's secret: a real threshold
    delivery verifies and is handled once (a resend, same webhook-id, is answered 204 and
    not handled again); a request signed otherwise is a 400."""
    threshold = ["entitlement.usage.threshold"]
    created = ok(
        hooked.post(W, json={"url": "http://127.0.0.1:9/unused", "eventTypes": threshold}), 201
    )
    endpoint = f"{W}/{created['id']}"
    monkeypatch.setenv("ALLOTMENT_WEBHOOK_SECRET", created["secret"])
    namespace: dict[str, Any] = {"__name__": "receiver_example"}
    exec(_receiver_example(), namespace)
    printed = StringIO()
    with redirect_stdout(printed), _serving(namespace) as url:
        ok(hooked.patch(endpoint, json={"url": url}))
        create_customer(hooked, "acme")
        subscribe(hooked, "acme", "free")
        ok(event(hooked, "acme", "e1", usageUnits=850), 201)  # 80% of free's 1000 calls
        delivered = wait_until(lambda: _delivered(hooked, endpoint), "the threshold delivered")
        ok(hooked.post(f"{endpoint}/messages/{delivered}/resend"), 202)
        wait_until(lambda: _attempts(hooked, endpoint, delivered) == 2, "the resend delivered")
        forged = httpx.post(
            url,
            content=b'{"type": "webhook.test"}',
            headers={
                "webhook-id": "msg_forged",
                "webhook-timestamp": "1",
                "webhook-signature": "v1,AA==",
            },
        )
    assert forged.status_code == 400
    assert namespace["seen"] == {delivered}
    assert printed.getvalue() == "acme reached 80 % of api_calls\n"


def _delivered(client: TestClient[FastPath], endpoint: str) -> str | None:
    messages = ok(client.get(f"{endpoint}/messages", params={"status": "delivered"}))
    threshold = [m for m in messages if m["type"] == "entitlement.usage.threshold"]
    return str(threshold[0]["id"]) if threshold else None


def _attempts(client: TestClient[FastPath], endpoint: str, message_id: str) -> int:
    messages = ok(client.get(f"{endpoint}/messages", params={"status": "delivered"}))
    return sum(len(m["attempts"]) for m in messages if m["id"] == message_id)
