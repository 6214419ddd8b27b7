"""OpenMeter's reads over a sharded environment (docs/scale-out.md SCL-60..SCL-63): every
shard's CloudEvent history is asked at once and the answers are merged exactly.

A meter's rows merge per window and group: SUM and COUNT add up, MIN and MAX take theirs.
The other three cannot be merged from their values, so their shards answer `MeterPart`s: AVG
with its sum and count, UNIQUE_COUNT with its distinct values (a value seen on two shards
counts once), LATEST with the time of its event. Event listings merge newest first, and the
journal position the v2 cursor carries is made unique across shards (SCL-62).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar, cast

import anyio
import msgspec

from allotment.domain.meters import Meter, MeterAggregation
from allotment.runtime.meter_reads import (
    CloudEventHistory,
    CustomerEvent,
    EventQuery,
    MeterPart,
    MeterQuery,
    MeterRow,
    StoredCloudEvent,
)
from allotment.runtime.placement import shard_of, tag_of_id

__all__ = ("ShardedHistory", "merge_parts", "merge_rows")

R = TypeVar("R")
BY_PARTS = frozenset({MeterAggregation.AVG, MeterAggregation.UNIQUE_COUNT, MeterAggregation.LATEST})
Key = tuple[object, ...]


class ShardedHistory:
    """`CloudEventHistory` over one history per shard (shard k is `members[k]`)."""

    def __init__(self, members: Sequence[CloudEventHistory]) -> None:
        self.members = list(members)

    async def _gather(self, call: Callable[[int, CloudEventHistory], Awaitable[R]]) -> list[R]:
        """`call` on every shard (its index and history) at once; the first failure
        (HistoryUnavailable, a shard being restarted) is raised as itself once all answered."""
        results: list[R | None] = [None] * len(self.members)
        failures: list[Exception] = []

        async def one(index: int) -> None:
            try:
                results[index] = await call(index, self.members[index])
            except Exception as error:  # raised below, not as an exception group
                failures.append(error)

        async with anyio.create_task_group() as tg:
            for index in range(len(self.members)):
                tg.start_soon(one, index)
        if failures:
            raise failures[0]
        return results  # type: ignore[return-value]  # every slot filled by its task

    async def query_meter(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterRow]:
        if meter.aggregation in BY_PARTS:
            parts = await self._gather(lambda _, h: h.meter_parts(environment, meter, query))
            return merge_parts(meter.aggregation, parts, query)
        rows = await self._gather(lambda _, h: h.query_meter(environment, meter, query))
        return merge_rows(meter.aggregation, rows, query)

    async def meter_parts(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterPart]:
        raise NotImplementedError("a sharded history is never one shard of another")

    async def list_events(self, environment: str, query: EventQuery) -> list[StoredCloudEvent]:
        """Each shard's first `limit` after the cursor, merged newest first (SCL-62)."""
        count = len(self.members)

        async def one(k: int, history: CloudEventHistory) -> list[StoredCloudEvent]:
            local = msgspec.structs.replace(query, after=_local_after(query.after, k, count))
            return [_global(e, k, count) for e in await history.list_events(environment, local)]

        lists = await self._gather(one)
        merged = sorted((e for events in lists for e in events), key=_order, reverse=True)
        return merged[: query.limit]

    async def distinct_values(
        self,
        environment: str,
        meter: Meter,
        dimension: str,
        start: datetime | None,
        end: datetime | None,
    ) -> list[str]:
        lists = await self._gather(
            lambda _, h: h.distinct_values(environment, meter, dimension, start, end)
        )
        return sorted({value for values in lists for value in values})

    async def customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        """From the customer's own shard, which its id names (SCL-3): every event of the
        customer was journalled there, so there is nothing to merge (SCL-103)."""
        history = self.members[shard_of(tag_of_id(customer_id), len(self.members))]
        return await history.customer_events(environment, customer_id, limit)


# -- meter rows (SCL-60, SCL-61) ----------------------------------------------------------------


def _groups(row: MeterRow, query: MeterQuery) -> tuple[str | None, ...]:
    named = {"subject": row.subject, "customer_id": row.customer_id}
    return tuple(named[n] if n in named else row.groups.get(n) for n in query.group_by)


def _key(row: MeterRow, query: MeterQuery) -> Key:
    """Its window (none without a window size: every row spans the query's range) and groups,
    in the order one shard's SQL gives (groups' NULLs first)."""
    window = () if query.window_size is None else (row.window_start, row.window_end)
    return (*window, *((v is not None, v or "") for v in _groups(row, query)))


def _spanned(rows: list[MeterRow], query: MeterQuery) -> list[MeterRow]:
    """Without a window size, one shard starts its rows at its own earliest event: the merged
    rows start at the earliest of all (as one shard holding every event would answer)."""
    if query.window_size is not None or not rows:
        return rows
    start = min(row.window_start for row in rows)
    return [msgspec.structs.replace(row, window_start=start) for row in rows]


_ADD: dict[MeterAggregation, Callable[[float, float], float]] = {
    MeterAggregation.SUM: lambda a, b: a + b,
    MeterAggregation.COUNT: lambda a, b: a + b,
    MeterAggregation.MIN: min,
    MeterAggregation.MAX: max,
}


def merge_rows(
    aggregation: MeterAggregation, shards: list[list[MeterRow]], query: MeterQuery
) -> list[MeterRow]:
    """SUM, COUNT, MIN and MAX rows of every shard, one row per window and group."""
    add = _ADD[aggregation]
    merged: dict[Key, MeterRow] = {}
    for row in _spanned([row for rows in shards for row in rows], query):
        key = _key(row, query)
        seen = merged.get(key)
        merged[key] = row if seen is None else msgspec.structs.replace(
            seen, value=add(seen.value, row.value)
        )  # fmt: skip
    return [merged[key] for key in sorted(merged)]


def merge_parts(
    aggregation: MeterAggregation, shards: list[list[MeterPart]], query: MeterQuery
) -> list[MeterRow]:
    """AVG, UNIQUE_COUNT and LATEST: each window and group from every shard's parts."""
    parts = [part for found in shards for part in found]
    rows = _spanned([part.row for part in parts], query)
    grouped: dict[Key, list[tuple[MeterRow, MeterPart]]] = {}
    for row, part in zip(rows, parts, strict=True):
        grouped.setdefault(_key(row, query), []).append((row, part))
    finish = _FINISH[aggregation]
    return [
        msgspec.structs.replace(grouped[key][0][0], value=finish(grouped[key]))
        for key in sorted(grouped)
    ]


Found = list[tuple[MeterRow, MeterPart]]


def _average(found: Found) -> float:
    """The shards' sums over the shards' counts of events with a value."""
    count = sum(cast(int, part.part) for _, part in found)
    return sum(row.value for row, _ in found) / count


def _unique(found: Found) -> float:
    """The distinct values of every shard, each once."""
    return float(len({value for _, part in found for value in cast(list[str], part.part)}))


def _latest(found: Found) -> float:
    """The value of the event with the latest time; a tie goes to the one ingested last
    (OM-46), then to the later shard (one clock stamps both, so such a tie is one instant)."""
    best = max(range(len(found)), key=lambda i: (cast(list[int], found[i][1].part), i))
    return found[best][0].value


_FINISH: dict[MeterAggregation, Callable[[Found], float]] = {
    MeterAggregation.AVG: _average,
    MeterAggregation.UNIQUE_COUNT: _unique,
    MeterAggregation.LATEST: _latest,
}


# -- event listings (SCL-62) --------------------------------------------------------------------


def _global(event: StoredCloudEvent, k: int, count: int) -> StoredCloudEvent:
    """Shard k's journal position p as `p * count + k`: unique across the shards and in each
    shard's own order, so the v2 cursor names one event of one shard."""
    return msgspec.structs.replace(event, journal_position=event.journal_position * count + k)


def _local_after(
    after: tuple[datetime, int, int] | None, k: int, count: int
) -> tuple[datetime, int, int] | None:
    """The cursor `after` (a global position) as shard k's: its events listed after it are
    those at the same time with a global position below it, or equal with a lower index."""
    if after is None:
        return None
    at, position, index = after
    if (position - k) % count == 0:
        return at, (position - k) // count, index
    # No event of shard k has that position: those after it are the positions below
    # ceil((position - k) / count), every index (an index is never below 0).
    return at, -((k - position) // count), 0


def _order(event: StoredCloudEvent) -> tuple[datetime, int, int]:
    """One shard's listing order, reversed (events_sql: newest time first, then the latest
    ingested)."""
    return event.time, event.journal_position, event.fact_index
