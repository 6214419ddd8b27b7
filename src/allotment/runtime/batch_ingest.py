"""Batches of events into a shard (issue 21, item 4): `POST /events/batch` (Tanso) and a
CloudEvents batch (OpenMeter), each event judged exactly as alone, in the batch's order, with
one journal record per customer per stretch (runtime/batch_turns.py) and one durable wait per
batch.

A batch runs in stretches of YIELD_EVERY events: a stretch runs and journals with no await
inside (the turn's contract), then the loop may serve others before the next one, so a large
batch does not hold it for its whole length. The replies come back once the last record is
durable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from anyio.lowlevel import checkpoint

from allotment.domain.replies import Reply
from allotment.runtime.batch_turns import BatchTurns
from allotment.runtime.ingestion import Event, Ingestion

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("YIELD_EVERY", "ingest_batch", "run_batch")

T = TypeVar("T")
R = TypeVar("R")
YIELD_EVERY = 100  # events of a batch between two yields to the loop


async def run_batch(
    shard: LocalShard, items: Sequence[T], judge: Callable[[BatchTurns], Callable[[T], R]]
) -> list[R]:
    """`judge(turns)` on every item in order, its turns' facts journalled per customer at the
    end of each stretch; returns the results once the last record is durable.

    Whatever a stretch applied before an item raised is journalled before the error goes on,
    as `Turns.applying` journals a raising turn's catch-up (unless the shard failed: then its
    memory matches no facts and nothing more is journalled).
    """
    turns = shard.turns
    turns.admit(write=True)
    batch = BatchTurns(turns, shard.mint)
    one = judge(batch)
    results: list[R] = []
    last = 0
    for start in range(0, len(items), YIELD_EVERY):
        if start:
            await checkpoint()  # between stretches: every fact so far is journalled
            turns.admit(write=False)  # the shard may have failed meanwhile
        try:
            results.extend(one(item) for item in items[start : start + YIELD_EVERY])
        except BaseException:
            if turns.failure is None:
                batch.flush()
            raise
        last = max(last, batch.flush())
    if last:
        await turns.durable(last)
    return results


async def ingest_batch(shard: LocalShard, events: list[Event]) -> list[Reply]:
    """Many Tanso events, each judged exactly as `Ingestion.ingest` would in the batch's order
    (keys claimed first, duplicates within the batch refused, customers and features
    auto-created by the first event that is accepted), sharing one durable wait."""

    def judge(turns: BatchTurns) -> Callable[[Event], Reply]:
        ingestion = Ingestion(shard, turns)
        return lambda event: ingestion.ingest_now(*event)[0]

    return await run_batch(shard, events, judge)
