"""What survives a restart (WHK-D15..WHK-D18): a pending message resumes with the same
webhook-id; the journal records replayed at recovery re-feed the outbox, which drops what its
log already has and logs what it lacks; a checkpoint leaves no notification behind; what a
deleted endpoint had does not come back (WHK-D44)."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.webhooks.dispatcher import RETENTION
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.conftest import make_rig, running
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio


async def _delivered(receiver: Receiver, count: int) -> None:
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: len(receiver.accepted()) >= count, f"{count} deliveries")


def _restarted() -> None:
    gc.collect()  # the first system's share of the data directory's lock goes with it


async def test_a_pending_message_resumes_after_a_restart_with_the_same_id(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D15, WHK-D12: the message log keeps the message and its failed attempt; the new
    process sends it when its retry is due, with the same webhook-id."""
    clock = ManualClock(START)
    receiver.statuses.append(500)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        endpoint = await rig.service.create_endpoint("test", receiver.url, (), "")
        receiver.secrets = [endpoint.secret]
        message_id = await rig.service.send_test("test", endpoint.id)
        sent = rig.message(endpoint.id, message_id)
        assert sent is not None
        with anyio.fail_after(BOUND_S):  # logged, not only received: the restart reads the log
            await wait_until_async(lambda: bool(sent.attempts), "the failed attempt logged")
    del rig
    _restarted()
    async with running(make_rig(tmp_path, clock, shards=shards)) as again:
        [message] = await again.service.messages("test", endpoint.id, None, 10)
        assert message.status == "pending" and len(message.attempts) == 1
        again.advance(5)
        await _delivered(receiver, 1)
    assert [d.id for d in receiver.deliveries] == [message_id, message_id]
    assert receiver.accepted()[0].verified_by == (endpoint.secret,)


async def test_recovery_refeeds_the_journal_without_sending_twice(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D16, WHK-D17: after a restart every replayed record is handed to the outbox again;
    events its log has are dropped (nothing is sent twice), and when the log lost them (here:
    deleted, as a crash between the journal's fsync and the log's would) they are logged and
    sent again with the same webhook-ids."""
    clock = ManualClock(START)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        endpoint = await rig.service.create_endpoint("test", receiver.url, (), "")
        receiver.secrets = [endpoint.secret]
        await rig.customer()
        for n in range(5):
            await rig.ingest(f"k{n}")
        await _delivered(receiver, 5)
    del rig
    _restarted()
    async with running(make_rig(tmp_path, clock, shards=shards)) as again:
        await again.logged()
        assert len(await again.service.feed("test", 0, frozenset(), 100)) == 5
        assert again.service.statistics()[0].backlog == 0
        logs = [log for log in again.message_logs() if log.exists()]
    del again
    _restarted()
    assert logs
    for log in logs:
        log.unlink()
    async with running(make_rig(tmp_path, clock, shards=shards)) as third:
        await _delivered(receiver, 10)
        assert len(await third.service.feed("test", 0, frozenset(), 100)) == 5
    ids = [d.id for d in receiver.accepted()]
    assert ids[5:] == ids[:5] == [f"evt_k{n}" for n in range(5)]


async def test_a_checkpoint_leaves_no_notification_between_snapshot_and_log(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D18: a checkpoint waits until the outbox's log holds every notification its
    snapshot covers; after a restart from that snapshot the feed is whole, nothing doubled."""
    clock = ManualClock(START)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        await rig.customer()
        for n in range(8):
            await rig.ingest(f"k{n}")
        reports = await rig.system.checkpoint_all()
        assert max(r.position for r in reports) >= 9  # acme's shard's covers every record
        for n in range(8, 10):
            await rig.ingest(f"k{n}")
    del rig
    _restarted()
    async with running(make_rig(tmp_path, clock, shards=shards)) as again:
        await again.logged()
        feed = await again.service.feed("test", 0, frozenset(), 100)
    assert [r.event.id for r in feed] == [f"evt_k{n}" for n in range(10)]


async def test_a_deleted_endpoints_pending_message_stays_gone_and_is_compacted(
    tmp_path: Path, receiver: Receiver, shards: int
) -> None:
    """WHK-D9, WHK-D44: an endpoint deleted with a message pending (a failed attempt, its
    retry due) loses it at once; after a restart the log's records of it do not bring it back,
    nothing is pending, the event stays in the feed, and compaction drops it after the
    retention like any settled event, from the book and from every log."""
    clock = ManualClock(START)
    receiver.statuses.append(500)
    async with running(make_rig(tmp_path, clock, shards=shards)) as rig:
        endpoint = await rig.service.create_endpoint("test", receiver.url, (), "")
        receiver.secrets = [endpoint.secret]
        await rig.customer()
        await rig.ingest("k0")
        await rig.logged()
        sent = rig.message(endpoint.id, "evt_k0")
        assert sent is not None
        with anyio.fail_after(BOUND_S):  # logged, not only received: the restart reads the log
            await wait_until_async(lambda: bool(sent.attempts), "the failed attempt logged")
        await rig.service.delete_endpoint("test", endpoint.id)
        assert rig.message(endpoint.id, "evt_k0") is None
    del rig
    _restarted()
    async with running(make_rig(tmp_path, clock, shards=shards)) as again:
        await again.logged()
        assert again.message(endpoint.id, "evt_k0") is None
        books = [outbox.book for outbox in again.service.outboxes("test")]
        assert all(endpoint.id not in book.pending for book in books)
        feed = await again.service.feed("test", 0, frozenset(), 100)
        assert [r.event.id for r in feed] == ["evt_k0"]
        clock.advance_to(START + RETENTION * 2)
        assert sum([await outbox.compact() for outbox in again.service.outboxes("test")]) == 1
        assert await again.service.feed("test", 0, frozenset(), 100) == []
        logs = [log for log in again.message_logs() if log.exists()]
    assert logs
    assert all(endpoint.id not in log.read_text() for log in logs)
    assert [d.id for d in receiver.deliveries] == ["evt_k0"]  # the 500; never sent again
