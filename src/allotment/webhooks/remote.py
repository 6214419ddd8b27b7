"""The webhook admin of a front door whose shards are other processes (docs/scale-out.md
SCL-67..SCL-69): each shard host runs its own `WebhookService`, fed from its own journal and
holding its own copy of the environment's endpoints under its own data directory; this
`WebhookAdmin` reaches them by method name through `hosts` (runtime/ray_shard.py gives one
call per host, the tests call the services directly).

Endpoints are the environment's: shard 0 decides a change (a new id and secret, a URL's check,
a 404) and every other shard then holds the same endpoint, so every shard's notifications go to
it and each host's restart keeps it. Reads merge every host's answer as `shard_feeds` does in
one process. `statistics()` cannot wait for the hosts: it is what they said at most
`statistics_every_s` ago.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import anyio
import msgspec

from allotment.webhooks.book import Message, Status
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import EventLogged
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.ports import (
    ChannelFields,
    EndpointChange,
    EndpointStatistics,
    WebhookRefused,
)
from allotment.webhooks.shard_feeds import interleaved, newest_first, unpack

__all__ = ("HostCall", "RemoteWebhooks")

HostCall = Callable[[str, tuple[object, ...]], Awaitable[Any]]
"""`WebhookService.<method>(*args)` on one shard host, awaited there."""
R = TypeVar("R")


class RemoteWebhooks:
    """`webhooks.ports.WebhookAdmin` over one `WebhookService` per shard host."""

    def __init__(self, hosts: Sequence[HostCall], statistics_every_s: float = 1.0) -> None:
        self._hosts = list(hosts)
        self._statistics: list[list[EndpointStatistics]] = [[] for _ in self._hosts]
        self._statistics_every_s = statistics_every_s

    async def _all(self, method: str, *args: object, start: int = 0) -> list[Any]:
        """`method` on hosts `start`.. at once, answers in host order."""
        return await _gather([partial(host, method, args) for host in self._hosts[start:]])

    async def _decided(self, method: str, *args: object) -> Any:
        """`method` on shard 0 (whatever it refuses changed nothing), then every other shard
        holds the endpoint it answered."""
        endpoint = await self._hosts[0](method, args)
        await self._all("put_endpoint", endpoint, start=1)
        return endpoint

    async def _everywhere(self, method: str, *args: object) -> Any:
        """`method` on shard 0, then on the others: a change each applies to its own copy."""
        first = await self._hosts[0](method, args)
        await self._all(method, *args, start=1)
        return first

    async def _first_holding(self, method: str, *args: object) -> Any:
        """`method` on each host until one does not answer 404 (each event is one shard's)."""
        missing: WebhookRefused | None = None
        for host in self._hosts:
            try:
                return await host(method, args)
            except WebhookRefused as refused:
                if refused.status != 404:
                    raise
                missing = refused
        assert missing is not None
        raise missing

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The hosts deliver; here, only the statistics are refreshed."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._refresh_statistics)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _refresh_statistics(self) -> None:
        while True:
            for k, host in enumerate(self._hosts):
                try:
                    self._statistics[k] = await host("statistics", ())
                except Exception:  # noqa: S112 - a host down: its last rows stand
                    continue
            await anyio.sleep(self._statistics_every_s)

    def statistics(self) -> list[EndpointStatistics]:
        """Every host's rows added up per endpoint (SCL-66)."""
        merged: dict[str, EndpointStatistics] = {}
        for rows in self._statistics:
            for row in rows:
                seen = merged.get(row.endpoint)
                merged[row.endpoint] = row if seen is None else _added(seen, row)
        return list(merged.values())

    async def statistics_now(self, bound_s: float) -> list[EndpointStatistics] | None:
        """Over Ray, `statistics()`: what the hosts said at most `statistics_every_s` ago
        (a host that stopped answering keeps its last rows; see docs/scale-out.md)."""
        return self.statistics()

    def wake(self) -> None:
        """Nothing to do here: each host wakes its own outboxes when its clock is moved."""

    # -- endpoints (SCL-67) --------------------------------------------------------------------

    async def list_endpoints(self, environment: str) -> list[Endpoint]:
        lists = await self._all("list_endpoints", environment)
        return [_merged([e, *_same(e, lists[1:])]) for e in lists[0]]

    async def get_endpoint(self, environment: str, endpoint_id: str) -> Endpoint:
        return _merged(await self._all("get_endpoint", environment, endpoint_id))

    async def create_endpoint(
        self, environment: str, url: str, event_types: tuple[str, ...], description: str
    ) -> Endpoint:
        endpoint: Endpoint = await self._decided(
            "create_endpoint", environment, url, event_types, description
        )
        return endpoint

    async def update_endpoint(
        self, environment: str, endpoint_id: str, change: EndpointChange
    ) -> Endpoint:
        await self._everywhere("update_endpoint", environment, endpoint_id, change)
        return await self.get_endpoint(environment, endpoint_id)

    async def delete_endpoint(self, environment: str, endpoint_id: str) -> Endpoint:
        endpoint: Endpoint = await self._everywhere("delete_endpoint", environment, endpoint_id)
        return endpoint

    async def rotate_secret(self, environment: str, endpoint_id: str) -> Endpoint:
        endpoint: Endpoint = await self._decided("rotate_secret", environment, endpoint_id)
        return endpoint

    # -- messages and the feed (SCL-68) ----------------------------------------------------------

    async def send_test(self, environment: str, endpoint_id: str) -> str:
        message_id: str = await self._hosts[0]("send_test", (environment, endpoint_id))
        return message_id

    async def messages(
        self, environment: str, endpoint_id: str, status: Status | None, limit: int
    ) -> list[Message]:
        lists = await self._all("messages", environment, endpoint_id, status, limit)
        return newest_first(lists, limit)

    async def resend(self, environment: str, endpoint_id: str, message_id: str) -> Message:
        message: Message = await self._first_holding("resend", environment, endpoint_id,
                                                      message_id)  # fmt: skip
        return message

    async def feed(
        self, environment: str, after: int, types: frozenset[str], limit: int
    ) -> list[EventLogged]:
        seqs = unpack(after, len(self._hosts))
        pages = await _gather([
            partial(host, "feed", (environment, seqs[k], types, limit))
            for k, host in enumerate(self._hosts)
        ])  # fmt: skip
        return interleaved(pages, after, limit)

    async def feed_gap(self, environment: str, after: int) -> bool:
        seqs = unpack(after, len(self._hosts))
        gaps = await _gather([
            partial(host, "feed_gap", (environment, seqs[k])) for k, host in enumerate(self._hosts)
        ])  # fmt: skip
        return any(gaps)

    # -- OpenMeter notification channels and events ----------------------------------------------

    async def list_channels(self, environment: str) -> list[Endpoint]:
        channels: list[Endpoint] = await self._hosts[0]("list_channels", (environment,))
        return channels

    async def get_channel(self, environment: str, channel_id: str) -> Endpoint:
        channel: Endpoint = await self._hosts[0]("get_channel", (environment, channel_id))
        return channel

    async def create_channel(self, environment: str, fields: ChannelFields) -> Endpoint:
        channel: Endpoint = await self._decided("create_channel", environment, fields)
        return channel

    async def update_channel(
        self, environment: str, channel_id: str, fields: ChannelFields
    ) -> Endpoint:
        channel: Endpoint = await self._everywhere("update_channel", environment, channel_id,
                                                    fields)  # fmt: skip
        return channel

    async def delete_channel(self, environment: str, channel_id: str) -> Endpoint:
        channel: Endpoint = await self._everywhere("delete_channel", environment, channel_id)
        return channel

    async def notification_events(
        self, environment: str
    ) -> list[tuple[EventLogged, list[Message]]]:
        lists = await self._all("notification_events", environment)
        return [pair for pairs in lists for pair in pairs]

    async def notification_event(
        self, environment: str, event_id: str
    ) -> tuple[EventLogged, list[Message]]:
        found: tuple[EventLogged, list[Message]] = await self._first_holding(
            "notification_event", environment, event_id
        )
        return found

    async def resend_notification(
        self, environment: str, event_id: str, channels: list[str] | None
    ) -> None:
        await self._first_holding("resend_notification", environment, event_id, channels)

    async def send_rule_test(self, environment: str, event: OutboundEvent) -> None:
        await self._hosts[0]("send_rule_test", (environment, event))


async def _gather(calls: list[Callable[[], Awaitable[R]]]) -> list[R]:
    """Every call at once, answers in order; the first failure is raised as itself (not as an
    exception group) once every call has answered."""
    answers: list[R | None] = [None] * len(calls)
    failures: list[Exception] = []

    async def one(k: int) -> None:
        try:
            answers[k] = await calls[k]()
        except Exception as error:  # raised below
            failures.append(error)

    async with anyio.create_task_group() as tg:
        for k in range(len(calls)):
            tg.start_soon(one, k)
    if failures:
        raise failures[0]
    return answers  # type: ignore[return-value]  # every slot filled by its task


def _same(endpoint: Endpoint, lists: list[list[Endpoint]]) -> list[Endpoint]:
    return [e for endpoints in lists for e in endpoints if e.id == endpoint.id]


def _merged(copies: list[Endpoint]) -> Endpoint:
    """Shard 0's endpoint, disabled when any shard's copy is (a 410 answered to that shard's
    delivery disables its copy, SCL-67)."""
    disabled = next((e for e in copies if not e.enabled), None)
    if disabled is None or not copies[0].enabled:
        return copies[0]
    return msgspec.structs.replace(
        copies[0], enabled=False, disabled_reason=disabled.disabled_reason
    )


def _added(a: EndpointStatistics, b: EndpointStatistics) -> EndpointStatistics:
    return msgspec.structs.replace(
        a, enabled=a.enabled and b.enabled, backlog=a.backlog + b.backlog,
        delivered=a.delivered + b.delivered, failed=a.failed + b.failed,
    )  # fmt: skip
