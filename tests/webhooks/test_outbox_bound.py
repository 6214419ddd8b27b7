"""The outbox's queue of records waiting to be logged is bounded (WHK-D46): when the message
log stalls, the shard refuses changes (Overloaded, a 503 with Retry-After) once the bound is
reached, rather than the queue growing without end or dropping a committed notification;
once the log moves again every record accepted is logged, and changes are admitted again."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from allotment.runtime.clock import ManualClock
from allotment.runtime.errors import Overloaded
from allotment.webhooks.message_log import MessageLog
from tests.conftest import START
from tests.waiting import BOUND_S
from tests.webhooks.conftest import make_rig, running

pytestmark = pytest.mark.anyio
INCOMING_MAX = 3


async def test_a_stalled_log_makes_the_shard_refuse_changes_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WHK-D46: with the log's writes held, at most INCOMING_MAX records wait in the queue
    (one more may be in the batch being written); the next change is refused before its turn;
    released, the log gets every accepted record's event in commit order, and a change after
    that is admitted."""
    gate = anyio.Event()
    sync = MessageLog.sync

    async def stalled(self: MessageLog, *, durable: bool = True) -> None:
        await gate.wait()  # a disk that stopped answering
        await sync(self, durable=durable)

    monkeypatch.setattr(MessageLog, "sync", stalled)
    async with running(make_rig(tmp_path, ManualClock(START))) as rig:
        rig.service.outbox("test").incoming_max = INCOMING_MAX
        await rig.customer()
        accepted: list[str] = []
        refused: Overloaded | None = None
        for n in range(4 * INCOMING_MAX):
            try:
                await rig.ingest(f"k{n}")
            except Overloaded as overloaded:
                refused = overloaded
                break
            accepted.append(f"evt_k{n}")
        assert refused is not None and "notifications" in refused.reason
        assert INCOMING_MAX <= len(accepted) <= INCOMING_MAX + 1
        gate.set()
        with anyio.fail_after(BOUND_S):
            await rig.logged()
        await rig.ingest("after")
        with anyio.fail_after(BOUND_S):
            await rig.logged()
        feed = await rig.service.feed("test", 0, frozenset(), 100)
    assert [r.event.id for r in feed] == [*accepted, "evt_after"]
