"""Single events gathered per shard into `ingest_batch` calls (SCL-34): a remote call costs
about 0.8 ms whatever it carries, so a call carrying many events is what makes a remote shard's
ingest rate grow (issue 19's measurements; docs/scale-out.md). The key claims events make on
their keys' home shards are gathered the same way (SCL-85)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio

from allotment.domain.commands import RecordUsage
from allotment.domain.replies import Reply
from allotment.runtime.ports import CustomerLookup

__all__ = ("BATCH_MAX", "BATCH_WINDOW_S", "Batcher", "Event", "EventBatcher")

Event = tuple[CustomerLookup, RecordUsage, uuid.UUID | None]
BATCH_WINDOW_S = 0.001  # SCL-34: the longest an event waits for others to share its call
BATCH_MAX = 256  # SCL-34: events per call
In = TypeVar("In")
Out = TypeVar("Out")


class _Batch(Generic[In, Out]):
    __slots__ = ("done", "error", "events", "full", "replies", "stamp")

    def __init__(self) -> None:
        self.events: list[In] = []
        self.stamp: int | None = None
        self.full = anyio.Event()
        self.done = anyio.Event()
        self.replies: list[Out] = []
        self.error: Exception | None = None


class Batcher(Generic[In, Out]):
    """Single events gathered into `ingest_batch` calls (SCL-34). The first event of a batch
    leads it: it waits until `window_s` passed or `batch_max` events joined, sends them, and
    hands each its reply. No task of its own: a batcher idles at no cost. A batch goes with
    the oldest catalog version its events were stamped with: refused when any is stale, so
    each is retried by its router (SCL-14)."""

    def __init__(
        self,
        send: Callable[[list[In], int | None], Awaitable[list[Out]]],
        window_s: float = BATCH_WINDOW_S,
        batch_max: int = BATCH_MAX,
    ) -> None:
        self._send = send
        self._window_s = window_s
        self._batch_max = batch_max
        self._open: _Batch[In, Out] | None = None
        self.calls = 0  # batches sent (the bench reports events per call)
        self.events = 0

    async def submit(self, event: In, stamp: int | None) -> Out:
        batch = self._open
        leads = batch is None
        if batch is None:
            batch = self._open = _Batch()
        index = len(batch.events)
        batch.events.append(event)
        if stamp is not None and (batch.stamp is None or stamp < batch.stamp):
            batch.stamp = stamp
        if len(batch.events) >= self._batch_max:
            self._open = None  # the next event starts a new batch
            batch.full.set()
        if leads:
            # Shielded: the others wait on this batch, so a leader whose client went away
            # still sends it (the window is bounded, and so is the call: ShardChannel).
            with anyio.CancelScope(shield=True):
                await self._lead(batch)
        else:
            await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.replies[index]

    async def _lead(self, batch: _Batch[In, Out]) -> None:
        with anyio.move_on_after(self._window_s):
            await batch.full.wait()
        if self._open is batch:
            self._open = None
        self.calls += 1
        self.events += len(batch.events)
        try:
            batch.replies = await self._send(batch.events, batch.stamp)
        except Exception as error:  # every event of the batch answers with it
            batch.error = error
        finally:
            batch.done.set()


EventBatcher = Batcher[Event, Reply]
