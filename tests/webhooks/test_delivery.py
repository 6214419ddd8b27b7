"""Delivery end to end on a real receiver that verifies every request with `standardwebhooks`
(WHK-D10..WHK-D28): signing, order, retries on Svix's schedule driven by the manual clock,
410, rotation, a slow endpoint, the backlog cap."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.runtime.records import EvaluationContext
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.ports import EndpointChange, WebhookRefused
from allotment.webhooks.sender import RETRY_DELAYS
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.conftest import USAGE_TYPE, Rig, make_rig, running
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio


async def _endpoint(rig: Rig, receiver: Receiver, types: tuple[str, ...] = ()) -> Endpoint:
    endpoint = await rig.service.create_endpoint("test", receiver.url, types, "")
    receiver.secrets = [endpoint.secret]
    return endpoint


async def _delivered(receiver: Receiver, count: int) -> None:
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: len(receiver.accepted()) >= count, f"{count} deliveries")


async def _attempts(rig: Rig, endpoint: Endpoint, message_id: str, count: int) -> None:
    def attempted() -> bool:
        message = rig.message(endpoint.id, message_id)
        return message is not None and len(message.attempts) >= count

    with anyio.fail_after(BOUND_S):
        await wait_until_async(attempted, f"{count} attempts of {message_id}")


async def test_journal_notifications_arrive_signed_in_commit_order(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D10, WHK-D11, WHK-D14, WHK-D22: each committed notification is delivered once the
    journal holds it, signed (standardwebhooks verifies it), `{type, timestamp, data}`, and a
    customer's notifications arrive in commit order; the pull feed has them in that order."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        await rig.customer()
        keys = [f"k{n:02}" for n in range(12)]
        for key in keys:
            await rig.ingest(key)
        await _delivered(receiver, len(keys))
    accepted = receiver.accepted()
    assert receiver.unverified == []
    assert [d.id for d in accepted] == [f"evt_{k}" for k in keys]
    assert all(d.verified_by == (endpoint.secret,) for d in accepted)
    assert {tuple(sorted(d.body)) for d in accepted} == {("data", "timestamp", "type")}
    assert {d.body["type"] for d in accepted} == {USAGE_TYPE}
    assert [d.body["data"]["key"] for d in accepted] == keys
    feed = await rig.service.feed("test", 0, frozenset(), 100)
    assert [r.event.id for r in feed] == [f"evt_{k}" for k in keys]
    seqs = [r.seq for r in feed]  # with shards, each packs every shard's seq (SCL-65)
    assert seqs == sorted(set(seqs)) and (shards > 1 or seqs == list(range(1, len(keys) + 1)))
    assert [r.event.id for r in await rig.service.feed("test", seqs[9], frozenset(), 100)] == [
        "evt_k10", "evt_k11",
    ]  # fmt: skip


async def test_an_endpoint_down_then_up_gets_everything_and_every_try_is_logged(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D20, WHK-D12, WHK-D33: three 500s, then up. The retries follow Svix's schedule on
    the manual clock (at once, +5 s, +5 min, +30 min); the same webhook-id every time; the
    attempt log shows each try with its status code."""
    clock = ManualClock(START)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        receiver.statuses.extend([500, 503, 500])
        message_id = await rig.service.send_test("test", endpoint.id)
        for attempt, delay in enumerate(RETRY_DELAYS[1:4], 1):
            await _attempts(rig, endpoint, message_id, attempt)
            message = rig.message(endpoint.id, message_id)
            assert message is not None and message.status == "pending"
            assert message.due == message.attempts[-1].at + delay  # the schedule, exactly
            rig.advance(delay.total_seconds())
        await _delivered(receiver, 1)
        await _attempts(rig, endpoint, message_id, 4)
        [message] = await rig.service.messages("test", endpoint.id, None, 10)
    assert [d.id for d in receiver.deliveries] == [message_id] * 4
    assert [d.status for d in receiver.deliveries] == [500, 503, 500, 200]
    assert [(a.status_code, a.outcome) for a in message.attempts] == [
        (500, "retrying"), (503, "retrying"), (500, "retrying"), (200, "delivered"),
    ]  # fmt: skip
    assert message.status == "delivered"
    assert [a.at for a in message.attempts] == [
        START, START + timedelta(seconds=5), START + timedelta(seconds=305),
        START + timedelta(seconds=2105),
    ]  # fmt: skip


async def test_a_message_fails_after_the_whole_schedule(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D20: eight attempts (at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then
    failed; a resend (WHK-D34) sends it again with the same webhook-id."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        receiver.statuses.extend([502] * len(RETRY_DELAYS))
        message_id = await rig.service.send_test("test", endpoint.id)
        for attempt, delay in enumerate(RETRY_DELAYS[1:], 1):
            await _attempts(rig, endpoint, message_id, attempt)
            rig.advance(delay.total_seconds())
        await _attempts(rig, endpoint, message_id, len(RETRY_DELAYS))
        [failed] = await rig.service.messages("test", endpoint.id, "failed", 10)
        assert [a.outcome for a in failed.attempts] == ["retrying"] * 7 + ["failed"]
        await rig.service.resend("test", endpoint.id, message_id)
        await _delivered(receiver, 1)
    assert receiver.accepted()[0].id == message_id
    assert len(receiver.deliveries) == len(RETRY_DELAYS) + 1


async def test_410_disables_the_endpoint(tmp_path: Path, receiver: Receiver, shards: int) -> None:
    """WHK-D21: a 410 disables the endpoint; nothing more is sent until it is enabled."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        receiver.statuses.append(410)
        message_id = await rig.service.send_test("test", endpoint.id)
        await _attempts(rig, endpoint, message_id, 1)
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: not rig.service._of("test")[endpoint.id].enabled, "disabled"
            )
        disabled = await rig.service.get_endpoint("test", endpoint.id)
        assert "410" in disabled.disabled_reason
        await rig.service.update_endpoint("test", endpoint.id, EndpointChange(enabled=True))
        rig.advance(5)
        await _delivered(receiver, 1)
    assert [d.status for d in receiver.deliveries] == [410, 200]


async def test_events_committed_while_disabled_are_in_the_feed_only(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D45: after a 410 disabled the endpoint, an event committed before it is enabled
    again gets no message for it (none listed, a resend is a 404, nothing sent when enabled);
    the one pending when it was disabled, and the ones after, go; the feed has all three."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        await rig.customer()
        receiver.statuses.append(410)
        await rig.ingest("before")
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: not rig.service._of("test")[endpoint.id].enabled, "disabled"
            )
        await rig.ingest("while_disabled")
        await rig.logged()
        await rig.service.update_endpoint("test", endpoint.id, EndpointChange(enabled=True))
        await rig.ingest("after")
        rig.advance(5)  # the 410's retry (WHK-D20)
        await _delivered(receiver, 2)
        with anyio.fail_after(BOUND_S):
            await wait_until_async(
                lambda: rig.service.statistics()[0].backlog == 0, "every outcome in the book"
            )
        assert rig.message(endpoint.id, "evt_while_disabled") is None
        listed = await rig.service.messages("test", endpoint.id, None, 10)
        assert sorted(m.event.id for m in listed) == ["evt_after", "evt_before"]
        with pytest.raises(WebhookRefused) as refused:
            await rig.service.resend("test", endpoint.id, "evt_while_disabled")
        assert refused.value.status == 404
        feed = await rig.service.feed("test", 0, frozenset(), 10)
    assert [r.event.id for r in feed] == ["evt_before", "evt_while_disabled", "evt_after"]
    assert [d.id for d in receiver.accepted()] == ["evt_before", "evt_after"]


async def test_after_a_rotation_both_secrets_sign_for_24_hours(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D6: during the grace period every delivery carries both signatures (each verifies
    on its own); after it, only the new secret signs."""
    clock = ManualClock(START)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        rotated = await rig.service.rotate_secret("test", endpoint.id)
        assert rotated.secret != endpoint.secret
        receiver.secrets = [endpoint.secret, rotated.secret]
        await rig.service.send_test("test", endpoint.id)
        await _delivered(receiver, 1)
        rig.advance(timedelta(hours=24, seconds=1).total_seconds())
        await rig.service.send_test("test", endpoint.id)
        await _delivered(receiver, 2)
    first, second = receiver.accepted()
    assert set(first.verified_by) == {endpoint.secret, rotated.secret}
    assert second.verified_by == (rotated.secret,)


async def test_a_slow_endpoint_never_holds_up_checks_or_events(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D25: while the endpoint holds every request, events and checks are answered (the
    turn never waits on delivery); once it answers, everything arrives, in order."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        await _endpoint(rig, receiver)
        await rig.customer()
        receiver.gate.clear()
        await rig.ingest("first")
        with anyio.fail_after(BOUND_S):
            await wait_until_async(lambda: receiver.held >= 1, "the first request held")
        shard = rig.system.route("test")
        for n in range(20):  # answered while the receiver still holds the first request
            await rig.ingest(f"more{n:02}")
            await shard.evaluate("acme", "ai_chat", None, EvaluationContext(method="GET"))
        assert not receiver.gate.is_set() and receiver.deliveries == []
        receiver.gate.set()
        await _delivered(receiver, 21)
    assert [d.id for d in receiver.accepted()] == ["evt_first"] + [
        f"evt_more{n:02}" for n in range(20)
    ]


async def test_the_backlog_is_capped_and_the_feed_keeps_everything(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D27: past the cap, new messages for the endpoint fail at once (said in the attempt
    log and counted); the pull feed still has every event; statistics show the backlog."""
    async with running(make_rig(tmp_path, ManualClock(START), backlog_max=2, shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        await rig.customer()
        receiver.gate.clear()
        for n in range(6):
            await rig.ingest(f"k{n}")
        await rig.logged()
        [row] = rig.service.statistics()
        assert (row.backlog, row.backlog_max, row.failed) == (2, 2, 4)
        failed = await rig.service.messages("test", endpoint.id, "failed", 10)
        assert all("backlog" in m.attempts[0].error for m in failed)
        assert len(await rig.service.feed("test", 0, frozenset(), 100)) == 6
        receiver.gate.set()
        await _delivered(receiver, 2)
    assert [d.id for d in receiver.accepted()] == ["evt_k0", "evt_k1"]


async def test_event_types_filter_what_an_endpoint_receives(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D3: an endpoint subscribed to other types gets nothing of these; one with none
    listed gets everything."""
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        other = await rig.service.create_endpoint("test", receiver.url, ("invoice.paid",), "")
        everything = await _endpoint(rig, receiver)
        await rig.customer()
        await rig.ingest("only")
        await _delivered(receiver, 1)
        assert rig.message(other.id, "evt_only") is None
        assert rig.message(everything.id, "evt_only") is not None


async def test_scl64_every_shards_notifications_are_delivered_fed_and_listed(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """SCL-64..SCL-66: customers on each of the three shards (a4 on 0, acme on 1, a1 on 2):
    every notification is delivered once, signed, each customer's in commit order; the pull
    feed pages through all of them exactly once with its cursor; the messages listing and the
    statistics count every shard's."""
    customers = ("a4", "acme", "a1")
    async with running(make_rig(tmp_path, ManualClock(START), shards=shards)) as rig:
        endpoint = await _endpoint(rig, receiver)
        for customer in customers:
            await rig.customer(customer)
        for n in range(3):
            for customer in customers:
                await rig.ingest(f"{customer}-{n}", customer)
        await _delivered(receiver, 9)
        with anyio.fail_after(BOUND_S):  # a receiver's arrival comes before its outcome is logged
            await wait_until_async(
                lambda: rig.service.statistics()[0].backlog == 0, "every outcome in the book"
            )
        await rig.logged()
        fed = [len(outbox.book.feed) for outbox in rig.service.outboxes("test")]
        assert fed == ([3, 3, 3] if shards == 3 else [9])  # each shard's from its journal
        paged: list[str] = []
        cursor = 0
        while page := await rig.service.feed("test", cursor, frozenset(), 2):
            paged.extend(r.event.id for r in page)
            cursor = page[-1].seq
        listed = await rig.service.messages("test", endpoint.id, "delivered", 100)
        [row] = rig.service.statistics()
    expected = {f"evt_{c}-{n}" for c in customers for n in range(3)}
    accepted = [d.id for d in receiver.accepted()]
    assert sorted(accepted) == sorted(expected) and receiver.unverified == []
    for customer in customers:  # WHK-D22 per customer, whichever shard holds it
        assert [i for i in accepted if i.startswith(f"evt_{customer}-")] == [
            f"evt_{customer}-{n}" for n in range(3)
        ]
    assert sorted(paged) == sorted(expected)
    assert sorted(m.event.id for m in listed) == sorted(expected)
    assert (row.delivered, row.backlog) == (9, 0)
