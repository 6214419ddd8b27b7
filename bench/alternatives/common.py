"""What the populators, the front door and the orchestrator agree on: names, keys, addresses."""

from __future__ import annotations

import os
from datetime import datetime

__all__ = (
    "EVENTS_TABLE",
    "FEATURE",
    "PLAN",
    "SUM_SQL",
    "counter_key",
    "customer_prefix",
    "customer_refs",
    "pg_dsn",
    "redis_url",
)

PLAN = "pro_monthly"  # demo catalog: api_calls is metered with maxUsage 100,000 per period
FEATURE = "api_calls"
EVENTS_TABLE = "alt_events"

# The Tanso reference design: usage is the sum of the period's events, on every check.
SUM_SQL = (
    f"SELECT coalesce(sum(usage_units), 0) FROM {EVENTS_TABLE} "
    "WHERE customer_ref = $1 AND feature_key = $2 AND occurred_at >= $3"
)


def pg_dsn() -> str:
    port = os.environ.get("ALLOTMENT_BENCH_PG_PORT", "55432")
    return f"postgresql://allotment_bench@127.0.0.1:{port}/postgres"


def redis_url() -> str:
    port = os.environ.get("ALLOTMENT_BENCH_REDIS_PORT", "56379")
    return f"redis://127.0.0.1:{port}/0"


def customer_prefix(size: int) -> str:
    """Customers with `size` events each are named `n<size>-c0`, `n<size>-c1`, ..."""
    return f"n{size}-c"


def customer_refs(size: int, customers: int) -> list[str]:
    return [f"{customer_prefix(size)}{i}" for i in range(customers)]


def counter_key(ref: str, feature: str, period_start: datetime) -> str:
    """The Redis counter of one (customer, feature, period)."""
    return f"usage:{ref}:{feature}:{int(period_start.timestamp())}"
