"""Attempt outcomes on their way from a delivery worker to the message log, and from there
into the book (WHK-D22, WHK-D21).

A worker hands over its attempt's outcome and goes on to its endpoint's next due lane head;
one writer task writes every outcome handed over meanwhile in one write (not fsynced: see
`MessageLog.sync`), and only then tells the book. Until the book hears of it the message
stays in flight, so neither its lane's next head nor its retry can be taken: an outcome lost
in a crash can never let a later message of the lane go first.

Why not have each worker wait for the write of its own outcome (as before): that wait, once
per delivery, was a suspension and a resumption of the worker's whole chain of coroutines on
the server's one thread; a worker now waits only when it has nothing else to send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from allotment.webhooks.book import Book, Message
from allotment.webhooks.message_log import Attempted, MessageLog

__all__ = ("Outcomes",)


class Outcomes:
    def __init__(
        self,
        log: MessageLog,
        book: Book,
        disable: Callable[[str, str], Awaitable[None]],
        wake: Callable[[], None],
    ) -> None:
        self._log = log
        self._book = book
        self._disable = disable
        self._wake = wake  # delivery: lane heads may have become ready
        self._unwritten: list[tuple[Message, Attempted]] = []
        self._writing = False
        self._wakeup: asyncio.Future[None] | None = None  # the writer's, while it waits
        self._waiting: list[asyncio.Future[None]] = []  # workers', until the next write ends

    def add(self, message: Message, record: Attempted) -> None:
        """`record`, the outcome of an attempt of `message` (in flight until it is written)."""
        self._log.append(record)
        self._unwritten.append((message, record))
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    @property
    def unwritten(self) -> bool:
        """Whether some outcome handed over is not in the book yet."""
        return self._writing or bool(self._unwritten)

    async def wait_written(self) -> None:
        """Until the write under way, or the next one, has ended. A hint, not a guarantee:
        the caller looks at the lanes again after it."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        await waiter  # one future each: a cancelled waiter cancels only its own

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._unwritten:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            batch, self._unwritten = self._unwritten, []
            self._writing = True
            try:
                await self._log.sync(durable=False)
            except BaseException:  # not written: the messages go back to their lanes
                self._writing = False
                for message, _ in batch:
                    message.in_flight = False
                    self._book.schedule(message)
                raise
            self._writing = False
            for message, record in batch:
                message.in_flight = False
                self._book.apply(record)
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                if not waiter.done():  # cancelled meanwhile
                    waiter.set_result(None)
            self._wake()
            for _, record in batch:
                if record.outcome == "disabled":  # WHK-D21: the receiver asks us to stop
                    await self._disable(record.endpoint, "the endpoint answered 410 Gone")
