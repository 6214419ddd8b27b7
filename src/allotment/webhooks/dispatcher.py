"""One environment's delivery side: the outbox the shard hands journal records to, and the
tasks that log and deliver them (WHK-D14..WHK-D28).

Ingest: `committed` is called in the turn, synchronous and cheap: it renders the record's
notifications (nothing to do for most records) and queues them. The ingest task waits until
the record is durable in the journal, drops the events already logged (a replay after
restart re-feeds records; dedupe is by event id), fans each out to the endpoints subscribed at
that moment, and appends them to the message log with one fsync per batch. Nothing is sent
before both the journal and the message log hold it.

Delivery: every endpoint's lanes are walked; a lane's head that is due is sent, at most
`IN_FLIGHT_MAX` at a time per endpoint, by workers that each take the endpoint's next due head
when done, so a burst does not cost a task per delivery; each attempt's outcome is written to
the log (one write for all the outcomes of the moment, `outcomes.py`) before the book hears of
it, so its lane's next head waits for that write.
The clock deciding when a retry is due is the server's clock (manual in tests), so a test
moves time to drive retries; the signature's timestamp is the real time, as receivers check it
against their own clocks.
"""

from __future__ import annotations

import heapq
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup

from allotment.domain.facts import Fact
from allotment.persistence.errors import JournalUnavailable
from allotment.webhooks.book import Book, Message
from allotment.webhooks.endpoints import Endpoint
from allotment.webhooks.message_log import Attempted, EventLogged, MessageLog, Outcome, Requeued
from allotment.webhooks.outbound import OutboundEvent, body_of
from allotment.webhooks.outcomes import Outcomes
from allotment.webhooks.sender import Poster, Response
from allotment.webhooks.signing import signed_headers

__all__ = (
    "COMPACT_EVERY_S", "INCOMING_MAX", "IN_FLIGHT_MAX", "RETENTION", "TEST_EVENT", "Dispatcher",
    "Renderer",
)  # fmt: skip

TEST_EVENT = "webhook.test"  # POST /admin/webhooks/{id}/test (WHK-D8); never in the feed

logger = logging.getLogger("allotment.webhooks")

IN_FLIGHT_MAX = 16  # concurrent requests to one endpoint (each to a different customer lane)
# WHK-D46: records handed in (`committed`) and not yet taken to be logged. Healthy, it holds
# what is committed during one fsync of the message log (tens); it grows only when the log's
# disk stalls (an endpoint being down never fills it). At the bound the shard refuses changes
# (503) rather than this dropping a committed notification; ~1-2 KB a record.
INCOMING_MAX = 4096
RETENTION = timedelta(days=7)  # WHK-D42: delivered and failed messages, and the feed
COMPACT_EVERY_S = 3600.0  # how often the log is compacted (real time)
_BODIES_MAX = 4096  # bodies kept for the event's other endpoints (see Dispatcher._body)
Renderer = Callable[[uuid.UUID, str | None, Sequence[Fact]], list[OutboundEvent]]
Durable = Callable[[int], Awaitable[None]]
_Incoming = tuple[int, str, list[OutboundEvent], Durable | None]  # position, lane, events, durable


class Dispatcher:
    def __init__(
        self,
        environment: str,
        endpoints: Callable[[], dict[str, Endpoint]],
        disable: Callable[[str, str], Awaitable[None]],
        log: MessageLog,
        now: Callable[[], datetime],
        sender: Poster,
        render: Renderer | None,
        backlog_max: int,
        poll_s: float = 1.0,
        retention: timedelta = RETENTION,
        compact_every_s: float = COMPACT_EVERY_S,
        incoming_max: int = INCOMING_MAX,
    ) -> None:
        self.environment = environment
        self._endpoints = endpoints  # this environment's, by id, as they are now
        self._log = log
        self._now = now
        self._sender = sender
        self._render = render
        self.backlog_max = backlog_max
        self._poll_s = poll_s
        self.retention = retention
        self._compact_every_s = compact_every_s
        self.book = Book()
        for record in log.read():
            self.book.apply(record)
        # WHK-D44: the endpoint file says which endpoints exist; a deletion is written there
        # only, so the log's messages for an endpoint deleted before this start go now, as
        # `delete_endpoint` made them go in the process that deleted it.
        self.book.forget_endpoints_except(endpoints().keys())
        self._incoming: deque[_Incoming] = deque()  # bounded by admission: see `full`
        self.incoming_max = incoming_max
        self._batch_first = 0  # the first position of the batch being logged; 0: none
        self._ingested = anyio.Event()  # set after each batch is logged
        self._ingest_wakeup = anyio.Event()
        self._deliver_wakeup = anyio.Event()
        self._in_flight: dict[str, int] = {}  # endpoint -> its workers (requests at once)
        self._bodies: dict[str, bytes] = {}  # event id -> its body, see `_body`
        self._outcomes = Outcomes(log, self.book, disable, self.wake)
        self._due_to_run = False  # handed to a task group (`start`) and not stopped since

    # -- the outbox (persistence.store_ports.NotificationOutbox) ---------------------------------

    def committed(
        self,
        position: int,
        customer_id: uuid.UUID,
        external_id: str | None,
        facts: Sequence[Fact],
        durable: Durable | None,
    ) -> None:
        if self._render is None:
            return
        try:  # cheap when there is no notification: an isinstance per fact
            events = self._render(customer_id, external_id, facts)
        except Exception:  # a rendering bug must not fail the turn that committed its cause
            logger.exception("rendering the notifications of record %d failed", position)
            return
        if events:
            self._incoming.append((position, str(customer_id), events, durable))
            self._ingest_wakeup.set()

    async def logged_through(self, position: int) -> None:
        """WHK-D18. It waits from `start` on, not only once `run` is under way: a checkpoint
        right after a restart, before the task was first scheduled, must still wait for the
        re-fed records; a stopped outbox logs nothing more, so nothing is waited for."""
        while self._due_to_run and (
            (self._incoming and self._incoming[0][0] <= position)
            or 0 < self._batch_first <= position
        ):
            await self._ingested.wait()

    @property
    def full(self) -> bool:
        """WHK-D46: the records waiting to be logged reached `incoming_max`; the shard refuses
        changes until the ingest task takes them (`committed` itself never drops one)."""
        return len(self._incoming) >= self.incoming_max

    # -- tasks ---------------------------------------------------------------------------------

    def start(self, task_group: TaskGroup) -> None:
        """Run in `task_group`; from now on `logged_through` waits for the log."""
        self._due_to_run = True
        task_group.start_soon(self.run)

    async def run(self) -> None:
        self._due_to_run = True
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ingest_forever)
                tg.start_soon(self._outcomes.run)
                tg.start_soon(self._compact_forever)
                await self._deliver_forever(tg)
        finally:
            self._due_to_run = False
            self._ingested.set()
            self._log.close()

    def wake(self) -> None:
        """Look for due messages now (after the clock moved, an endpoint changed)."""
        self._deliver_wakeup.set()

    async def _ingest_forever(self) -> None:
        while True:
            if not self._incoming:
                await self._ingest_wakeup.wait()
            self._ingest_wakeup = anyio.Event()
            batch = list(self._incoming)
            self._incoming.clear()
            self._batch_first = batch[0][0]
            try:
                await self._ingest(batch)
            finally:
                self._batch_first = 0
                self._ingested.set()
                self._ingested = anyio.Event()
            self.wake()

    async def _ingest(self, batch: list[_Incoming]) -> None:
        for position, lane, events, durable in batch:
            if durable is not None:
                try:
                    await durable(position)
                except JournalUnavailable:  # never acknowledged; a rebuild re-feeds the disk's
                    continue
            if position <= self.book.compacted.dropped_position:
                continue  # logged before, and compacted away since (WHK-D42)
            for event in events:
                if event.id not in self.book.known:
                    self._log_event(event, self.book.next_seq, position, lane)
        await self._log.sync()

    def _log_event(self, event: OutboundEvent, seq: int, position: int, lane: str) -> None:
        # Fanned out to the endpoints enabled now: a disabled one never gets a message for an
        # event committed while it is disabled, as with Svix; the pull feed has it (WHK-D45).
        addressed = event.endpoints
        endpoints = [
            e for e in self._endpoints().values()
            if e.enabled and (e.wants(event.type) if addressed is None else e.id in addressed)
        ]  # fmt: skip
        record = EventLogged(
            seq=seq, position=position, customer=lane, event=event,
            endpoints=[e.id for e in endpoints],
        )  # fmt: skip
        self._record(record)
        for endpoint in endpoints:  # over the cap: failed at once, still in the feed (WHK-D27)
            if self.book.pending.get(endpoint.id, 0) > self.backlog_max:
                self._record(
                    Attempted(
                        endpoint=endpoint.id, message=event.id, at=self._now(),
                        error=f"not sent: the endpoint's backlog is over {self.backlog_max}",
                        outcome="failed",
                    )
                )  # fmt: skip

    def _record(self, record: EventLogged | Attempted | Requeued) -> None:
        self.book.apply(record)
        self._log.append(record)

    async def _deliver_forever(self, tg: TaskGroup) -> None:
        while True:
            self._deliver_wakeup = anyio.Event()
            now = self._now()
            soonest = self._start_due(tg, now)
            wait = self._poll_s
            if soonest is not None:
                wait = min(wait, max(0.0, (soonest - now).total_seconds()))
            with anyio.move_on_after(wait):
                await self._deliver_wakeup.wait()

    def _start_due(self, tg: TaskGroup, now: datetime) -> datetime | None:
        """Start a worker per due lane head an endpoint has room for; the soonest later due
        time."""
        soonest: datetime | None = None
        for endpoint in self._endpoints().values():
            if not endpoint.enabled:
                continue
            # Due retries join `ready` even when every worker is busy: left in `timed`, they
            # would make the soonest due time past, and this loop spin until a worker is free.
            self._release_due(endpoint.id, now)
            while self._in_flight.get(endpoint.id, 0) < IN_FLIGHT_MAX:
                message = self._take(endpoint.id, now)
                if message is None:
                    break
                self._in_flight[endpoint.id] = self._in_flight.get(endpoint.id, 0) + 1
                tg.start_soon(self._work, endpoint.id, message)
            timed = self.book.timed.get(endpoint.id)
            if timed and (soonest is None or timed[0][0] < soonest):
                soonest = timed[0][0]
        return soonest

    def _release_due(self, endpoint_id: str, now: datetime) -> None:
        """Move the endpoint's lanes whose retry is due from `timed` to `ready`."""
        timed = self.book.timed.get(endpoint_id)
        if timed and timed[0][0] <= now:
            ready = self.book.ready.setdefault(endpoint_id, deque())
            while timed and timed[0][0] <= now:
                ready.append(heapq.heappop(timed)[1])

    def _take(self, endpoint_id: str, now: datetime) -> Message | None:
        """The endpoint's next lane head that may go now, marked in flight; None if none."""
        self._release_due(endpoint_id, now)
        ready = self.book.ready.get(endpoint_id)
        while ready:
            message = self._head(endpoint_id, ready.popleft())
            if message is None or (message.due is not None and message.due > now):
                continue  # stale: its retry has its own entry in `timed`
            message.in_flight = True
            return message
        return None

    def _head(self, endpoint_id: str, lane_key: str) -> Message | None:
        """The lane's head if it may be sent (None for a stale entry: sent, in flight, gone)."""
        lane = self.book.lanes.get(endpoint_id, {}).get(lane_key)
        if not lane:
            return None
        message = self.book.messages[endpoint_id, lane[0]]
        if message.in_flight or message.status != "pending":
            return None
        return message

    async def _work(self, endpoint_id: str, message: Message | None) -> None:
        """Attempt `message`, then the endpoint's next due lane heads one after another while
        there are any. Under load one task carries many deliveries: a task per delivery
        (anyio's start_soon, its handle and scope bookkeeping) cost more CPU than the send.
        The endpoint is looked up before each attempt, so a change (URL, secret, disabled,
        deleted) applies from the next delivery (WHK-D7)."""
        try:
            while message is not None:
                endpoint = self._endpoints().get(endpoint_id)
                if endpoint is None or not endpoint.enabled:
                    message.in_flight = False  # back in its lane, for when it is enabled
                    if endpoint is not None:  # deleted: the book forgot its lanes (WHK-D9)
                        self.book.schedule(message)
                    return
                record = await self._attempt(endpoint, message)
                if record.outcome == "disabled":  # a 410: it is being disabled (WHK-D21)
                    return
                message = self._take(endpoint_id, record.at)
                if message is None and self._outcomes.unwritten:  # its lane's next, perhaps
                    await self._outcomes.wait_written()
                    message = self._take(endpoint_id, self._now())
        finally:
            self._in_flight[endpoint_id] -= 1
            self.wake()  # a retry may now be the soonest due; a slot is free

    async def _attempt(self, endpoint: Endpoint, message: Message) -> Attempted:
        """Send `message` and hand its outcome to be logged (and return it). The message
        stays in flight until its outcome is written (`Outcomes`)."""
        landed = False  # local: once landed, the message's next attempt may set in_flight
        try:
            body = self._body(message.event)
            signed_at = int(time.time())  # the receiver's tolerance is on its real clock
            headers = signed_headers(
                endpoint.signing_secrets(self._now()), message.event.id, signed_at, body
            )
            if endpoint.custom_headers:  # a channel's never replace the signature's (OM-140)
                headers = {**endpoint.custom_headers, **headers}
            response = await self._sender.send(endpoint.url, headers, body)
            outcome = self._outcome(message, response)
            record = Attempted(
                endpoint=endpoint.id, message=message.event.id, at=self._now(),
                status_code=response.status_code, latency_ms=response.latency_ms,
                error=response.error, outcome=outcome,
            )  # fmt: skip
            self._outcomes.add(message, record)  # WHK-D22: in flight until written
            landed = True
            return record
        finally:
            if not landed:  # cancelled or failed before an outcome: try it again
                message.in_flight = False
                self.book.schedule(message)

    def _body(self, event: OutboundEvent) -> bytes:
        """The event's body, encoded once for all its endpoints (and its retries soon after):
        the bytes are the same every time (WHK-D11), so only the signature is per endpoint."""
        body = self._bodies.get(event.id)
        if body is None:
            if len(self._bodies) >= _BODIES_MAX:
                self._bodies.clear()  # a cache: a body is cheap to encode again
            body = self._bodies[event.id] = body_of(event)
        return body

    def _outcome(self, message: Message, response: Response) -> Outcome:
        if 200 <= response.status_code < 300:
            return "delivered"
        if response.status_code == 410:  # WHK-D21: the receiver asks us to stop
            return "disabled"
        return "failed" if self.book.exhausted(message) else "retrying"

    # -- compaction (WHK-D42, WHK-D43) -------------------------------------------------------

    async def _compact_forever(self) -> None:
        while True:
            await anyio.sleep(self._compact_every_s)
            try:
                await self.compact()
            except OSError:  # a full disk: the log keeps growing, delivery goes on
                logger.exception("compacting the %s message log failed", self.environment)

    async def compact(self) -> int:
        """Drop the events older than the retention whose messages are all delivered or
        failed, from memory at once (a resend of one is then a 404) and from the log by a
        rewrite off the turn's path; the number dropped."""
        dropped = self.book.droppable(self._now() - self.retention)
        if not dropped:
            return 0
        header = self.book.drop(dropped)
        await self._log.compact(frozenset(r.event.id for r in dropped), header)
        return len(dropped)

    # -- what the admin API does ------------------------------------------------------------------

    async def send_test(self, endpoint: Endpoint) -> OutboundEvent:
        """Log a `webhook.test` event for one endpoint, durably, and wake delivery (WHK-D8)."""
        event = OutboundEvent(
            id="msg_" + uuid.uuid4().hex, type=TEST_EVENT, timestamp=self._now(),
            data={"endpointId": endpoint.id, "message": "A test event from allotment."},
        )  # fmt: skip
        await self.send_outside_feed(event, [endpoint.id])
        return event

    async def send_outside_feed(self, event: OutboundEvent, endpoint_ids: list[str]) -> None:
        """Log `event` for `endpoint_ids`, durably, and wake delivery: a test event (WHK-D8,
        OM-147), which no committed fact caused, so it is not in the feed."""
        self._record(
            EventLogged(seq=0, position=0, customer="", event=event, endpoints=endpoint_ids)
        )
        await self._log.sync()
        self.wake()

    async def resend_event(self, event_id: str, endpoint_ids: list[str]) -> list[Message]:
        """Queue every message of the event again, to `endpoint_ids` (OM-148)."""
        messages = [self.book.messages.get((e, event_id)) for e in endpoint_ids]
        found = [m for m in messages if m is not None]
        for message in found:
            self._record(Requeued(endpoint=message.endpoint, message=event_id, at=self._now()))
        await self._log.sync()
        self.wake()
        return found

    async def resend(self, endpoint_id: str, message_id: str) -> Message | None:
        """Queue a message again with a fresh retry schedule (WHK-D36); None if unknown."""
        found = await self.resend_event(message_id, [endpoint_id])
        return found[0] if found else None
