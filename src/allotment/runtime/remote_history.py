"""One shard's CloudEvent history read in another process (docs/scale-out.md SCL-63): the
`CloudEventHistory` reads as calls through the shard's channel to `HostedShards.history`,
which answers them from the host's own data directory. The front door's `ShardedHistory`
merges every host's answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol, cast

from allotment.domain.meters import Meter
from allotment.runtime.meter_reads import (
    CustomerEvent,
    EventQuery,
    MeterPart,
    MeterQuery,
    MeterRow,
    StoredCloudEvent,
)

__all__ = ("HistoryChannel", "RemoteHistory")


class HistoryChannel(Protocol):
    async def history(self, environment: str, method: str, args: tuple[object, ...]) -> object: ...


class RemoteHistory:
    """`runtime.meter_reads.CloudEventHistory` of the shard behind `channel`."""

    def __init__(self, channel: HistoryChannel) -> None:
        self._channel = channel

    async def query_meter(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterRow]:
        rows = await self._channel.history(environment, "query_meter", (meter, query))
        return cast(list[MeterRow], rows)

    async def meter_parts(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterPart]:
        parts = await self._channel.history(environment, "meter_parts", (meter, query))
        return cast(list[MeterPart], parts)

    async def list_events(self, environment: str, query: EventQuery) -> list[StoredCloudEvent]:
        events = await self._channel.history(environment, "list_events", (query,))
        return cast(list[StoredCloudEvent], events)

    async def distinct_values(
        self,
        environment: str,
        meter: Meter,
        dimension: str,
        start: datetime | None,
        end: datetime | None,
    ) -> list[str]:
        args = (meter, dimension, start, end)
        return cast(list[str], await self._channel.history(environment, "distinct_values", args))

    async def customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        args = (customer_id, limit)
        events = await self._channel.history(environment, "customer_events", args)
        return cast(list[CustomerEvent], events)
