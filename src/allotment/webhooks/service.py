"""The webhook service: every environment's endpoints and dispatcher, and the admin API's
operations on them (WHK-D1..WHK-D9, WHK-D33..WHK-D41). wiring.py builds it; the actor system
gets each environment's dispatcher as its `NotificationOutbox`; the app runs it in its
lifespan."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import msgspec
from anyio.abc import TaskGroup

from allotment.webhooks.book import Book, Message, Status
from allotment.webhooks.channels import ChannelOps
from allotment.webhooks.dispatcher import RETENTION, Dispatcher, Renderer
from allotment.webhooks.endpoints import ROTATION_GRACE, Endpoint, EndpointFile
from allotment.webhooks.message_log import EventLogged, MessageLog
from allotment.webhooks.payloads import EVENT_TYPES
from allotment.webhooks.ports import EndpointChange, EndpointStatistics, WebhookRefused
from allotment.webhooks.sender import Sender
from allotment.webhooks.shard_feeds import feed_gap, merged_feed, newest_messages
from allotment.webhooks.signing import new_secret
from allotment.webhooks.urls import UrlRefused, check_url

__all__ = ("BACKLOG_MAX", "WebhookService")

BACKLOG_MAX = 10_000  # pending messages per endpoint (WHK-D27)
_NONE: dict[str, Endpoint] = {}  # an environment without endpoints (never changed)
DESCRIPTION_MAX = 256


class WebhookService(ChannelOps):
    """`directory` None keeps everything in memory (the in-memory server)."""

    def __init__(
        self,
        directory: Path | None,
        now: Callable[[], datetime],
        sender: Sender,
        render: Renderer | None,
        *,
        allow_private: bool = False,
        backlog_max: int = BACKLOG_MAX,
        retention: timedelta = RETENTION,
        shard_logs: Sequence[Path | None] | None = None,
    ) -> None:
        self._directory = directory
        # Where each shard's message logs are kept (SCL-64): one outbox per environment and
        # shard, fed from that shard's journal; one shard's are under `directory`.
        self._shard_logs = list(shard_logs) if shard_logs is not None else [directory]
        self.now = now  # the server's clock; wiring sets it once the system has built it
        self._sender = sender
        self._render = render
        self._allow_private = allow_private
        self._backlog_max = backlog_max
        self._retention = retention
        self._file = EndpointFile(directory / "endpoints.json" if directory else None)
        self._endpoints: dict[str, Endpoint] = {}
        self._by_environment: dict[str, dict[str, Endpoint]] = {}  # see `_of`
        self._replace({e.id: e for e in self._file.load()})
        self._lock = anyio.Lock()  # one change to the endpoint file at a time
        self._dispatchers: dict[tuple[str, int], Dispatcher] = {}
        self._task_group: TaskGroup | None = None

    # -- the dispatchers ----------------------------------------------------------------------

    @property
    def shards(self) -> int:
        return len(self._shard_logs)

    def outbox(self, environment: str, shard: int = 0) -> Dispatcher:
        """The outbox shard `shard` of `environment` hands its journal records to."""
        dispatcher = self._dispatchers.get((environment, shard))
        if dispatcher is None:
            logs = self._shard_logs[shard]
            log = MessageLog(logs / environment if logs else None)
            dispatcher = self._dispatchers[environment, shard] = Dispatcher(
                environment, lambda: self._of(environment), self._disable, log,
                lambda: self.now(),  # noqa: PLW0108 - late: wiring sets `now` after this
                self._sender, self._render, self._backlog_max, retention=self._retention,
            )  # fmt: skip
            if self._task_group is not None:
                dispatcher.start(self._task_group)
        return dispatcher

    def outboxes(self, environment: str) -> list[Dispatcher]:
        """Every shard's outbox of `environment`, shard 0 first."""
        return [self.outbox(environment, k) for k in range(self.shards)]

    def _books(self, environment: str) -> list[Book]:
        return [outbox.book for outbox in self.outboxes(environment)]

    def _holding(self, environment: str, event_id: str) -> Dispatcher | None:
        """The outbox that logged event `event_id` (each event is one shard's)."""
        return next((o for o in self.outboxes(environment) if event_id in o.book.events), None)

    def _of(self, environment: str) -> dict[str, Endpoint]:
        """The environment's endpoints, by id; not to be changed by the caller. Every delivery
        asks (WHK-D7): they are indexed when the endpoints change, not filtered per ask."""
        return self._by_environment.get(environment, _NONE)

    def _replace(self, endpoints: dict[str, Endpoint]) -> None:
        """Make `endpoints` the service's, with their index by environment."""
        by_environment: dict[str, dict[str, Endpoint]] = {}
        for endpoint_id, endpoint in endpoints.items():
            by_environment.setdefault(endpoint.environment, {})[endpoint_id] = endpoint
        self._endpoints, self._by_environment = endpoints, by_environment

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            for dispatcher in self._dispatchers.values():
                dispatcher.start(tg)
            try:
                yield
            finally:
                self._task_group = None
                tg.cancel_scope.cancel()
        await self._sender.aclose()

    def wake(self) -> None:
        """Look for due deliveries now (the clock was moved)."""
        for dispatcher in self._dispatchers.values():
            dispatcher.wake()

    # -- endpoints ----------------------------------------------------------------------------

    async def _save(self, endpoint: Endpoint | None, removed: str = "") -> None:
        endpoints = dict(self._endpoints)
        if endpoint is not None:
            endpoints[endpoint.id] = endpoint
        endpoints.pop(removed, None)
        await anyio.to_thread.run_sync(self._file.save, list(endpoints.values()))
        self._replace(endpoints)  # the running server sees the change once it is on disk

    async def list_endpoints(self, environment: str) -> list[Endpoint]:
        return sorted(self._of(environment).values(), key=lambda e: e.created_at)

    async def get_endpoint(self, environment: str, endpoint_id: str) -> Endpoint:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None or endpoint.environment != environment:
            raise WebhookRefused(404, f"Webhook endpoint {endpoint_id!r} not found.")
        return endpoint

    async def _url(self, url: str) -> str:
        try:
            return await anyio.to_thread.run_sync(
                lambda: check_url(url, allow_private=self._allow_private)
            )
        except UrlRefused as refused:
            raise WebhookRefused(400, f"Invalid field 'url': {refused}.", "url") from None

    @staticmethod
    def _types(event_types: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(event_types) - EVENT_TYPES)
        if unknown:
            raise WebhookRefused(
                400, f"Invalid field 'eventTypes': unknown event type {unknown[0]!r}; "
                f"known: {', '.join(sorted(EVENT_TYPES))}.",
            )  # fmt: skip
        return tuple(dict.fromkeys(event_types))

    @staticmethod
    def _description(description: str) -> str:
        if len(description) > DESCRIPTION_MAX:
            raise WebhookRefused(
                400, f"Invalid field 'description': longer than {DESCRIPTION_MAX} characters."
            )
        return description

    async def create_endpoint(
        self, environment: str, url: str, event_types: tuple[str, ...], description: str
    ) -> Endpoint:
        endpoint = Endpoint(
            id="ep_" + secrets.token_hex(12), environment=environment, url=await self._url(url),
            event_types=self._types(event_types), description=self._description(description),
            secret=new_secret(), created_at=self.now(),
        )  # fmt: skip
        async with self._lock:
            await self._save(endpoint)
        return endpoint

    async def update_endpoint(
        self, environment: str, endpoint_id: str, change: EndpointChange
    ) -> Endpoint:
        url = await self._url(change.url) if change.url is not None else None
        types = self._types(change.event_types) if change.event_types is not None else None
        description = change.description
        if description is not None:
            self._description(description)
        async with self._lock:
            endpoint = await self.get_endpoint(environment, endpoint_id)
            updated = msgspec.structs.replace(
                endpoint, url=url or endpoint.url,
                event_types=endpoint.event_types if types is None else types,
                description=endpoint.description if description is None else description,
                enabled=endpoint.enabled if change.enabled is None else change.enabled,
                disabled_reason="" if change.enabled else endpoint.disabled_reason,
            )  # fmt: skip
            if change.enabled is False and endpoint.enabled:
                updated = msgspec.structs.replace(updated, disabled_reason="disabled by an admin")
            await self._save(updated)
        for outbox in self.outboxes(environment):
            outbox.wake()
        return updated

    async def delete_endpoint(self, environment: str, endpoint_id: str) -> Endpoint:
        """Delete the endpoint and forget its messages (WHK-D9). Only `endpoints.json` records
        the deletion: a restart forgets what the message log still holds for it (WHK-D44)."""
        async with self._lock:
            endpoint = await self.get_endpoint(environment, endpoint_id)
            await self._save(None, removed=endpoint_id)
        for book in self._books(environment):
            book.forget_endpoint(endpoint_id)
        return endpoint

    async def rotate_secret(self, environment: str, endpoint_id: str) -> Endpoint:
        async with self._lock:
            endpoint = await self.get_endpoint(environment, endpoint_id)
            rotated = msgspec.structs.replace(
                endpoint, secret=new_secret(), previous_secret=endpoint.secret,
                previous_secret_until=self.now() + ROTATION_GRACE,
            )  # fmt: skip
            await self._save(rotated)
        return rotated

    async def put_endpoint(self, endpoint: Endpoint) -> None:
        """Keep `endpoint` as another shard decided it (SCL-67: its id, secrets, fields). The
        state this shard's own deliveries gave it (disabled after a 410) stays."""
        async with self._lock:
            held = self._endpoints.get(endpoint.id)
            if held is not None and not held.enabled and endpoint.enabled:
                endpoint = msgspec.structs.replace(
                    endpoint, enabled=False, disabled_reason=held.disabled_reason
                )
            await self._save(endpoint)
        for outbox in self.outboxes(endpoint.environment):
            outbox.wake()

    async def _disable(self, endpoint_id: str, reason: str) -> None:
        async with self._lock:
            endpoint = self._endpoints.get(endpoint_id)
            if endpoint is not None and endpoint.enabled:
                await self._save(
                    msgspec.structs.replace(endpoint, enabled=False, disabled_reason=reason)
                )

    # -- messages and the feed --------------------------------------------------------------------

    async def send_test(self, environment: str, endpoint_id: str) -> str:
        endpoint = await self.get_endpoint(environment, endpoint_id)
        return (await self.outbox(environment).send_test(endpoint)).id

    async def messages(
        self, environment: str, endpoint_id: str, status: Status | None, limit: int
    ) -> list[Message]:
        await self.get_endpoint(environment, endpoint_id)
        return newest_messages(self._books(environment), endpoint_id, status, limit)

    async def resend(self, environment: str, endpoint_id: str, message_id: str) -> Message:
        await self.get_endpoint(environment, endpoint_id)
        outbox = self._holding(environment, message_id)
        message = None if outbox is None else await outbox.resend(endpoint_id, message_id)
        if message is None:
            raise WebhookRefused(404, f"Message {message_id!r} not found for this endpoint.")
        return message

    async def feed(
        self, environment: str, after: int, types: frozenset[str], limit: int
    ) -> list[EventLogged]:
        unknown = sorted(types - EVENT_TYPES)
        if unknown:
            raise WebhookRefused(400, f"Invalid field 'types': unknown event type {unknown[0]!r}.")
        return merged_feed(self._books(environment), after, types, limit)

    async def feed_gap(self, environment: str, after: int) -> bool:
        """Whether compaction dropped events after the cursor `after` (WHK-D42): the feed then
        resumes at the oldest event kept."""
        return feed_gap(self._books(environment), after)

    async def statistics_now(self, bound_s: float) -> list[EndpointStatistics] | None:
        """`statistics()`: the dispatchers are in this process, so nothing is waited for."""
        return self.statistics()

    def statistics(self) -> list[EndpointStatistics]:
        """One row per endpoint, every shard's outbox added up (SCL-66)."""
        rows = []
        for endpoint in self._endpoints.values():
            books = self._books(endpoint.environment)
            rows.append(
                EndpointStatistics(
                    environment=endpoint.environment, endpoint=endpoint.id,
                    enabled=endpoint.enabled,
                    backlog=sum(book.pending.get(endpoint.id, 0) for book in books),
                    backlog_max=self._backlog_max,
                    delivered=sum(book.counts.get((endpoint.id, "delivered"), 0) for book in books),
                    failed=sum(book.counts.get((endpoint.id, "failed"), 0) for book in books),
                )
            )  # fmt: skip
        return rows
