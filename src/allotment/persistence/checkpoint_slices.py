"""How a checkpoint shares the event loop with requests while it encodes (docs/internals.md,
"A checkpoint on the loop"): slices of `SLICE_S`, a rest of `REST_PER_WORK` times the work
after each, and the deflate of changed customers on a worker thread."""

from __future__ import annotations

import time
import uuid

import anyio

from allotment.persistence.compact_state import (
    Keys,
    deflate_stored,
    keys_of,
    plain_stored,
    read_keys,
)
from allotment.persistence.store_ports import RecoverableShard

__all__ = ("REST_PER_WORK", "SLICE_S", "Slices", "chunk_parts")

SLICE_S = 0.001  # the longest a checkpoint holds the event loop before requests run
REST_PER_WORK = 2.0  # seconds a checkpoint rests per second it worked: a third of the loop


class Slices:
    """Lets requests run whenever the checkpoint has held the event loop for `SLICE_S`, and
    rests `REST_PER_WORK` times as long as it worked before it goes on.

    A checkpoint's CPU is the loop's: a changed customer costs about 90 us to encode, so
    100k of them are seconds. Yielding every 50 customers let a slice run 4 to 18 ms, which
    a request arriving behind it waited out, once per step of its own (reading its body, its
    turn, its reply after the fsync). Yielding alone still let the checkpoint take every
    moment requests left it: under load the loop then had no time to spare, and a burst
    queued for 100s of ms. Resting keeps the checkpoint to a third of the loop's time."""

    __slots__ = ("_deadline", "_started")

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._deadline = self._started + SLICE_S

    async def maybe_yield(self) -> None:
        now = time.perf_counter()
        if now >= self._deadline:
            await _rest((now - self._started) * REST_PER_WORK)
            self.restart()

    def restart(self) -> None:
        """Count the loop's work afresh from now (after an await that was not work)."""
        self._started = time.perf_counter()
        self._deadline = self._started + SLICE_S


async def _rest(seconds: float) -> None:
    await anyio.sleep(seconds)


async def chunk_parts(
    shard: RecoverableShard, chunk: list[uuid.UUID], slices: Slices
) -> list[tuple[bytes, Keys]]:
    """Each customer's stored form and keys. A changed customer's state is encoded on the
    loop and deflated, the whole chunk at once, on a worker thread: deflate was 62 of the
    96 us a changed customer cost the loop, and zlib releases the GIL."""
    parts: list[tuple[bytes, Keys]] = []
    plain: dict[int, bytes] = {}  # the place in `parts` of each form still to deflate
    for customer_id in chunk:
        customer = shard.stored_customer(customer_id)
        if isinstance(customer, bytes):
            parts.append((customer, read_keys(customer)))
        else:
            keys = keys_of(customer)
            plain[len(parts)] = plain_stored(customer, keys)
            parts.append((b"", keys))
        await slices.maybe_yield()
    if plain:
        forms = await anyio.to_thread.run_sync(_deflate_all, list(plain.values()))
        slices.restart()  # the loop served requests while the thread worked
        for place, form in zip(plain, forms, strict=True):
            parts[place] = (form, parts[place][1])
    return parts


def _deflate_all(plain: list[bytes]) -> list[bytes]:
    return [deflate_stored(p) for p in plain]
