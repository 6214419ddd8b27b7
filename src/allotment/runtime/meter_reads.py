"""OpenMeter's reads (issue 16, docs/openmeter.md "Queries and listing"): the port that
answers the questions of `domain/meter_queries.py` from the CloudEvent history.

The answers come from the journal, never from customer state: the Parquet `events` history
(every record up to the exporter's cursor) plus the journal records after the cursor up to the
durable position, read at the moment of the query (OM-40). An adapter in persistence
(`persistence/cloud_history.py`) implements `CloudEventHistory` with DuckDB; wiring gives it
to the system (`ActorSystem.history`) when there is a data directory.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from allotment.domain.meter_queries import (
    EventQuery,
    Filter,
    MeterPart,
    MeterQuery,
    MeterRow,
    StoredCloudEvent,
    WindowSize,
)
from allotment.domain.meters import Meter
from allotment.persistence.errors import HistoryUnavailable
from allotment.persistence.reports import CustomerEvent

__all__ = (
    "CloudEventHistory",
    "CustomerEvent",
    "EventQuery",
    "Filter",
    "HistoryUnavailable",
    "MeterPart",
    "MeterQuery",
    "MeterRow",
    "StoredCloudEvent",
    "WindowSize",
)


class CloudEventHistory(Protocol):
    """The CloudEvents of an environment as journalled, read exactly up to the query's instant
    (OM-40). Every method may raise `HistoryUnavailable`."""

    async def query_meter(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterRow]:
        """The meter's aggregate per window and group, in window then group order."""
        ...

    async def meter_parts(
        self, environment: str, meter: Meter, query: MeterQuery
    ) -> list[MeterPart]:
        """As `query_meter`, each row with what merging it with another shard's needs
        (AVG, UNIQUE_COUNT and LATEST meters; docs/scale-out.md SCL-60)."""
        ...

    async def list_events(self, environment: str, query: EventQuery) -> list[StoredCloudEvent]:
        """Events matching `query`, newest `time` first, at most `query.limit`."""
        ...

    async def distinct_values(
        self,
        environment: str,
        meter: Meter,
        dimension: str,
        start: datetime | None,
        end: datetime | None,
    ) -> list[str]:
        """The distinct `subject` (dimension "subject") or group-by values of the meter's
        events in [start, end), sorted (OM-48, OM-49)."""
        ...

    async def customer_events(
        self, environment: str, customer_id: uuid.UUID, limit: int
    ) -> list[CustomerEvent]:
        """The customer's newest `limit` events (accepted usage and CloudEvents), newest
        first, from the journal's tail and then the history's files, stopping once found
        (the console's customer page, CON-80)."""
        ...
