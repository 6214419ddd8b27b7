"""Tasks waiting for a journal position to become durable (persistence/journal.py).

Each waiter is one future of the running asyncio loop, kept with the position it waits for. A
commit wakes only the waiters its durable position covers: with two batches in the pipe, the
second batch's waiters sleep through the first batch's commit instead of waking to find their
position not yet durable. One future per waiter, and no `Event` made per commit.
"""

from __future__ import annotations

import asyncio

__all__ = ("DurableWaiters",)


class DurableWaiters:
    """Futures of tasks waiting for positions, woken when a commit covers them."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def __len__(self) -> int:
        return len(self._waiting)

    async def wait(self, position: int) -> None:
        """Sleep until `wake` covers `position` (0: until the next `wake`). The caller looks
        again at why it waited: a wake after a failure covers every position."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((position, future))
        await future  # a cancelled waiter's future is cancelled; `wake` skips it

    def wake(self, durable: int, everyone: bool = False) -> None:
        """Wake the waiters of positions up to `durable` (all of them with `everyone`)."""
        waiting = self._waiting
        if not waiting:
            return
        if everyone or max(position for position, _ in waiting) <= durable:
            ready, self._waiting = waiting, []
        else:
            ready = [entry for entry in waiting if entry[0] <= durable]
            self._waiting = [entry for entry in waiting if entry[0] > durable]
        for _, future in ready:
            if not future.done():
                future.set_result(None)
