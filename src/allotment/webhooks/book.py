"""The state of one environment's messages, rebuilt by applying the message log's records in
order (the same code applies a record live and on restart, so both agree).

A message is one event for one endpoint; its id is the event's id, which is the `webhook-id`
every attempt sends (WHK-D12). Pending messages wait in lanes, one lane per endpoint and
customer, so a customer's messages reach an endpoint in commit order (WHK-D22) while one slow
customer's retries do not hold up the others.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

from allotment.webhooks.message_log import (
    Attempted,
    Compacted,
    EventLogged,
    LogRecord,
    Requeued,
)
from allotment.webhooks.outbound import OutboundEvent
from allotment.webhooks.sender import next_delay

__all__ = ("Book", "Message", "Status")

Status = Literal["pending", "delivered", "failed"]


@dataclass(slots=True)
class Message:
    endpoint: str
    event: OutboundEvent
    lane: str
    seq: int
    status: Status = "pending"
    failures: int = 0  # failed attempts since it was (re)queued
    due: datetime | None = None  # the next attempt; None: at once
    attempts: list[Attempted] = field(default_factory=list)
    in_flight: bool = False


class Book:
    def __init__(self) -> None:
        self.feed: list[EventLogged] = []  # committed events in commit order (seq 1, 2, ...)
        self.events: dict[str, EventLogged] = {}  # every event logged and kept, tests too
        self.compacted = Compacted(last_seq=0, dropped_seq=0, dropped_position=0, totals={})
        self.known: set[str] = set()  # every event id logged: recovery re-feeds dedupe on it
        self.messages: dict[tuple[str, str], Message] = {}
        self.lanes: dict[str, dict[str, deque[str]]] = {}  # endpoint -> lane -> message ids
        self.pending: dict[str, int] = {}  # endpoint -> pending messages (the backlog)
        self.counts: dict[tuple[str, Status], int] = {}  # (endpoint, final status) totals
        # Which lanes to look at, so delivery never scans them all: per endpoint, lanes whose
        # head may go now, and a heap of (due, lane) for heads waiting for a retry. Entries
        # can be stale (the dispatcher checks the head again before it sends).
        self.ready: dict[str, deque[str]] = {}
        self.timed: dict[str, list[tuple[datetime, str]]] = {}

    @property
    def next_seq(self) -> int:
        last = self.feed[-1].seq if self.feed else 0
        return max(last, self.compacted.last_seq) + 1  # compaction never reuses a seq

    def apply(self, record: LogRecord) -> None:
        match record:
            case EventLogged():
                self._logged(record)
            case Attempted():
                self._attempted(record)
            case Requeued():
                self._requeued(record)
            case Compacted():
                self.compacted = record
                for key, total in record.totals.items():
                    endpoint, status = key.split(" ")
                    self.counts[endpoint, cast(Status, status)] = total

    def _logged(self, record: EventLogged) -> None:
        self.known.add(record.event.id)
        self.events[record.event.id] = record
        if record.seq:
            self.feed.append(record)
        for endpoint in record.endpoints:
            message = Message(endpoint, record.event, record.customer, record.seq)
            self.messages[endpoint, record.event.id] = message
            self._enqueue(message)

    def _enqueue(self, message: Message) -> None:
        # get, then create: `setdefault(key, deque())` would build a deque for every message
        lanes = self.lanes.get(message.endpoint)
        if lanes is None:
            lanes = self.lanes[message.endpoint] = {}
        lane = lanes.get(message.lane)
        if lane is None:
            lane = lanes[message.lane] = deque()
        lane.append(message.event.id)
        self.pending[message.endpoint] = self.pending.get(message.endpoint, 0) + 1
        if len(lane) == 1:  # a new head
            self.schedule(message)

    def _dequeue(self, message: Message) -> None:
        lanes = self.lanes[message.endpoint]
        lane = lanes[message.lane]
        if lane[0] == message.event.id:  # the head, as a rule: no search
            lane.popleft()
        else:  # a failed-over-cap one may be anywhere
            lane.remove(message.event.id)
        if not lane:
            del lanes[message.lane]
        else:
            self.schedule(self.messages[message.endpoint, lane[0]])
        self.pending[message.endpoint] -= 1

    def schedule(self, head: Message) -> None:
        """Note a lane's head: ready now, or when its retry is due."""
        if head.due is None:
            ready = self.ready.get(head.endpoint)
            if ready is None:
                ready = self.ready[head.endpoint] = deque()
            ready.append(head.lane)
        else:
            heapq.heappush(self.timed.setdefault(head.endpoint, []), (head.due, head.lane))

    def _attempted(self, record: Attempted) -> None:
        message = self.messages.get((record.endpoint, record.message))
        if message is None:
            return
        message.attempts.append(record)
        if message.status != "pending":
            return
        if record.outcome in ("delivered", "failed"):
            message.status = record.outcome
            self._dequeue(message)
            key = (message.endpoint, record.outcome)
            self.counts[key] = self.counts.get(key, 0) + 1
            return
        message.failures += 1
        delay = next_delay(message.failures)
        message.due = record.at + delay if delay is not None else record.at
        self.schedule(message)

    def _requeued(self, record: Requeued) -> None:
        message = self.messages.get((record.endpoint, record.message))
        if message is None or message.status == "pending":
            return
        message.status, message.failures, message.due = "pending", 0, None
        self._enqueue(message)

    def exhausted(self, message: Message) -> bool:
        """Whether the message has used its whole retry schedule (the next outcome fails)."""
        return next_delay(message.failures + 1) is None

    def forget_endpoint(self, endpoint: str) -> None:
        """A deleted endpoint's messages go with it (WHK-D9): from the lanes, the backlog and
        the totals. Their events stay (the feed, other endpoints' messages) and, no message of
        theirs pending now, `droppable` lets them go after the retention (WHK-D44)."""
        for index in (self.lanes, self.pending, self.ready, self.timed):
            index.pop(endpoint, None)
        for key in [k for k in self.messages if k[0] == endpoint]:
            del self.messages[key]
        for status in [s for e, s in self.counts if e == endpoint]:
            del self.counts[endpoint, status]

    def forget_endpoints_except(self, endpoints: Collection[str]) -> list[str]:
        """Forget the messages of every endpoint not in `endpoints` (the endpoint file's, the
        source of truth for which endpoints exist), after the log was replayed: the log keeps
        a deleted endpoint's messages until compaction, and its deletion is not in the log
        (WHK-D44). The ids forgotten."""
        gone = {endpoint for endpoint, _ in self.messages if endpoint not in endpoints}
        for endpoint in gone:
            self.forget_endpoint(endpoint)
        return sorted(gone)

    def droppable(self, cutoff: datetime) -> list[EventLogged]:
        """WHK-D42: the events older than `cutoff` whose every message is delivered or failed,
        its last attempt older than `cutoff` too (a pending message keeps its event)."""
        old: list[EventLogged] = []
        for record in self.events.values():
            if record.event.timestamp >= cutoff:
                continue
            messages = [self.messages.get((e, record.event.id)) for e in record.endpoints]
            if all(m is None or _settled_before(m, cutoff) for m in messages):
                old.append(record)
        return old

    def drop(self, records: list[EventLogged]) -> Compacted:
        """Forget `records` (from `droppable`); the `Compacted` header the log is rewritten
        with, cumulating what every compaction dropped."""
        totals = dict(self.compacted.totals)
        last_seq = self.next_seq - 1
        ids = set()
        for record in records:
            ids.add(record.event.id)
            del self.events[record.event.id]
            self.known.discard(record.event.id)
            for endpoint in record.endpoints:
                message = self.messages.pop((endpoint, record.event.id), None)
                for attempt in message.attempts if message is not None else ():
                    if attempt.outcome in ("delivered", "failed"):
                        key = f"{endpoint} {attempt.outcome}"
                        totals[key] = totals.get(key, 0) + 1
        self.feed = [record for record in self.feed if record.event.id not in ids]
        self.compacted = Compacted(
            last_seq=last_seq,
            dropped_seq=max([self.compacted.dropped_seq, *(r.seq for r in records)]),
            dropped_position=max([self.compacted.dropped_position, *(r.position for r in records)]),
            totals=totals,
        )
        return self.compacted


def _settled_before(message: Message, cutoff: datetime) -> bool:
    return message.status != "pending" and (
        not message.attempts or message.attempts[-1].at < cutoff
    )
