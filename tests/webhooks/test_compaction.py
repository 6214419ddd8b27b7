"""Compaction of the message log (WHK-D42, WHK-D43): delivered and failed messages older than
the retention are dropped from memory and from `messages.log` by a rewrite; pending ones and
recent ones stay; the feed's numbering continues and says when a cursor missed events; a
restart after compaction, or in the middle of one, gives back the old or the new log whole."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.webhooks.dispatcher import RETENTION
from allotment.webhooks.endpoints import Endpoint
from tests.conftest import START
from tests.waiting import BOUND_S, wait_until_async
from tests.webhooks.conftest import Rig, make_rig, running
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.anyio
DAY_S = 86_400


async def _delivered(receiver: Receiver, count: int) -> None:
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: len(receiver.accepted()) >= count, f"{count} deliveries")


async def _old_and_new(rig: Rig, receiver: Receiver) -> Endpoint:
    """Five events delivered, eight days ago; a test event failing (pending); two recent."""
    endpoint = await rig.service.create_endpoint("test", receiver.url, (), "")
    receiver.secrets = [endpoint.secret]
    await rig.customer()
    for n in range(5):
        await rig.ingest(f"old{n}")
    await _delivered(receiver, 5)
    receiver.statuses.append(500)
    pending = await rig.service.send_test("test", endpoint.id)
    book = rig.service.outbox("test").book
    with anyio.fail_after(BOUND_S):
        await wait_until_async(lambda: bool(book.messages[endpoint.id, pending].attempts), "500")
    rig.clock.advance_to(START + RETENTION + RETENTION / 7)  # eight days on
    for n in range(2):
        await rig.ingest(f"new{n}")
    await _delivered(receiver, 7)  # the retry of the test event is due too: 500 -> 200
    with anyio.fail_after(BOUND_S):  # a receiver's arrival comes before its outcome is logged
        await wait_until_async(
            lambda: rig.service.statistics()[0].backlog == 0, "every outcome in the book"
        )
    return endpoint


def _log(tmp_path: Path) -> Path:
    return tmp_path / "webhooks" / "test" / "messages.log"


async def test_compaction_keeps_pending_and_recent_and_survives_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    """WHK-D42: the five old delivered events go (from the book and the file); the recent ones
    stay; totals stay; the next event continues the feed's numbering; a cursor before the
    dropped ones starts at the oldest kept and says so (gap); after a restart the same, and
    the recovery's re-feed of the journal sends nothing dropped again (WHK-D16)."""
    clock = ManualClock(START)
    async with running(make_rig(tmp_path, clock)) as rig:
        endpoint = await _old_and_new(rig, receiver)
        size = _log(tmp_path).stat().st_size
        outbox = rig.service.outbox("test")
        assert await outbox.compact() == 5
        assert _log(tmp_path).stat().st_size < size
        assert [r.event.id for r in await rig.service.feed("test", 0, frozenset(), 100)] == [
            "evt_new0", "evt_new1",
        ]  # fmt: skip
        assert await rig.service.feed_gap("test", 0) and not await rig.service.feed_gap("test", 5)
        before = rig.service.statistics()[0]
        assert (before.delivered, before.backlog) == (8, 0)
        assert await outbox.compact() == 0
    del rig
    gc.collect()
    async with running(make_rig(tmp_path, clock)) as again:
        outbox = again.service.outbox("test")
        await outbox.logged_through(again.system.shard("test").journal.position)
        assert [(r.seq, r.event.id) for r in outbox.book.feed] == [(6, "evt_new0"), (7, "evt_new1")]
        assert again.service.statistics()[0] == before
        await again.ingest("after")
        await _delivered(receiver, 9)
        assert outbox.book.feed[-1].seq == 8
        assert await again.service.feed_gap("test", 3)
    ids = [d.id for d in receiver.accepted()]  # the 2xx ones: the test event once
    assert len(ids) == len(set(ids)) == 9 and ids[-1] == "evt_after"  # nothing sent twice
    assert all(d.verified_by == (endpoint.secret,) for d in receiver.accepted())


@pytest.mark.parametrize("crash_at", ["rename", "directory_fsync"])
async def test_a_crash_in_the_middle_leaves_the_old_log_or_the_new(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    """WHK-D43: a crash before the rename leaves the old file (and a temporary one, deleted at
    the next start): every message is back. A crash after it leaves the new file whole."""
    clock = ManualClock(START)
    real_replace, real_fsync = os.replace, os.fsync

    # Only the compaction's own calls crash: the journal renames and fsyncs meanwhile too.
    def crash_replace(source: str | Path, target: str | Path) -> None:
        if str(source).endswith(".compacting"):
            raise OSError("crashed before the rename")
        real_replace(source, target)

    def crash_fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == str(_log(tmp_path).parent):
            raise OSError("crashed after the rename")
        real_fsync(fd)

    async with running(make_rig(tmp_path, clock)) as rig:
        await _old_and_new(rig, receiver)
        old = _log(tmp_path).read_bytes()
        if crash_at == "rename":
            monkeypatch.setattr(os, "replace", crash_replace)
        else:
            monkeypatch.setattr(os, "fsync", crash_fsync)
        with pytest.raises(OSError, match="crashed"):
            await rig.service.outbox("test").compact()
        monkeypatch.setattr(os, "replace", real_replace)
        monkeypatch.setattr(os, "fsync", real_fsync)
    del rig
    gc.collect()
    temporary = _log(tmp_path).with_name("messages.log.compacting")
    assert temporary.exists() == (crash_at == "rename")
    async with running(make_rig(tmp_path, clock)) as again:
        feed = [r.event.id for r in await again.service.feed("test", 0, frozenset(), 100)]
    assert not temporary.exists()
    if crash_at == "rename":
        assert _log(tmp_path).read_bytes() == old
        assert feed == [f"evt_old{n}" for n in range(5)] + ["evt_new0", "evt_new1"]
    else:
        assert feed == ["evt_new0", "evt_new1"]
