"""What a shard host answers besides its shards' calls (docs/scale-out.md SCL-63, SCL-67):
OpenMeter's reads of its CloudEvent history and the webhook admin's operations on its own
webhook service, each by method name from an allowed set (`hosted_shards.HostedShards`)."""

from __future__ import annotations

import inspect

from allotment.persistence.errors import HistoryUnavailable
from allotment.runtime.errors import ShardUnavailable
from allotment.runtime.system import ActorSystem

__all__ = ("HISTORY_METHODS", "WEBHOOK_METHODS", "history_read", "webhook_operation")

HISTORY_METHODS = frozenset(
    {"query_meter", "meter_parts", "list_events", "distinct_values", "customer_events"}
)
# What a front door may ask of a host's webhook service (webhooks/remote.py, SCL-67..SCL-69).
WEBHOOK_METHODS = frozenset(
    {
        "list_endpoints", "get_endpoint", "create_endpoint", "update_endpoint",
        "delete_endpoint", "rotate_secret", "put_endpoint", "send_test", "messages", "resend",
        "feed", "feed_gap", "statistics", "list_channels", "get_channel", "create_channel",
        "update_channel", "delete_channel", "notification_events", "notification_event",
        "resend_notification", "send_rule_test",
    }
)  # fmt: skip


async def history_read(
    system: ActorSystem, environment: str, method: str, args: tuple[object, ...]
) -> object:
    """`system.history.<method>(environment, *args)`; the front door merges every host's."""
    if method not in HISTORY_METHODS:
        raise ValueError(f"{method!r} is not a history read")
    if system.history is None:
        raise HistoryUnavailable("this shard runs without a data directory: no history")
    answer: object = await getattr(system.history, method)(environment, *args)
    return answer


async def webhook_operation(system: ActorSystem, method: str, args: tuple[object, ...]) -> object:
    """`system.webhooks.<method>(*args)`, awaited when it is a coroutine."""
    if method not in WEBHOOK_METHODS:
        raise ValueError(f"{method!r} is not a webhook operation")
    if system.webhooks is None:
        raise ShardUnavailable("this shard host runs without webhooks")
    answer: object = getattr(system.webhooks, method)(*args)
    return await answer if inspect.isawaitable(answer) else answer
