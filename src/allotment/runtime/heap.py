"""Keeping CPython's cycle collector off the customers' state.

The state of every customer is made of long-lived containers (structs, dicts, lists). A full
(generation 2) collection walks all of them with the event loop stopped: at 20k customers that
measured 0.9-1.3 s, which became the p99 of every request. Three measures keep it off:

- the immutable records kept per event (facts, ledger and audit entries, replies) are structs
  with `gc=False`: they cannot be part of a cycle, so the collector never tracks them;
- `settle()` moves everything alive into the permanent generation (`gc.freeze`) at the end of
  recovery and after every checkpoint, so collections walk only what was allocated since;
- between settles, full collections are put off (the third threshold): the young generations
  still collect short-lived cycles, and each settle runs the full collection over what is new.

The state is acyclic by construction, so reference counting still frees a frozen object once it
is replaced; only a garbage cycle that outlived the young generations and was then frozen would
be kept, and the full collection before each freeze leaves none.

A serving process needs one more measure (`serving`): customers recovered lazily are decoded on
first touch, long after the settle at the end of recovery, and so are new customers and the
state a turn replaces. Put off, the full collection that came walked all of them at once: after
a warm-up pass over 100k customers, the checkpoint's settle took 1.5-1.7 s (bench/README,
"Session 14"; bench/bench_gc_pauses.py). So in a serving process whatever survives a full
collection is frozen at once, and a full collection comes after every second young one: each
walks only what became long-lived since the last (at most 6.7 ms in that bench's warm-up;
7-13 ms in a served process at 2k events/s, where every tenth young one, CPython's default,
paused 20-50 ms).
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("not_serving", "recovering", "serving", "settle")

_FULL_COLLECTIONS_PUT_OFF = 1_000  # young collections between full ones (CPython's default: 10)
_FULL_COLLECTIONS_SERVING = 2  # young collections between full ones while serving

# At exit, hand the frozen objects back to the collector, so interpreter shutdown releases
# them (native extensions such as DuckDB's report what is never released as leaks).
atexit.register(gc.unfreeze)


def settle(*, collect: bool = True) -> None:
    """Freeze what is alive now. `collect=False` skips the collection before the freeze, for
    the end of recovery: a collection then would walk the whole recovered state."""
    _full_collection_after(_full_collections_every())
    if collect:
        gc.collect()  # frozen objects are not walked: this costs what is new since the last
    gc.freeze()


@contextmanager
def recovering() -> Iterator[None]:
    """No cycle collection while recovery builds the state (millions of objects: scans would
    dominate it), then `settle` it without a collection: it is all long-lived."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        settle(collect=False)
        if collecting:
            gc.enable()


def serving() -> None:
    """Freeze what survives each full collection from now on, for the life of this process.

    For a process that serves (`asgi.served_app`), not for one that merely builds a system:
    a freeze keeps a cycle that was alive at the collection and becomes garbage later (the
    state has none; a request's objects rarely form one that outlives the request), so a
    test process building app after app would keep their garbage."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
    _full_collection_after(_FULL_COLLECTIONS_SERVING)


def not_serving() -> None:
    """Undo `serving` (for tests): full collections put off again, survivors left in place."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    _full_collection_after(_FULL_COLLECTIONS_PUT_OFF)


def _full_collection_after(young_collections: int) -> None:
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, young_collections)


def _full_collections_every() -> int:
    serving_now = _freeze_survivors in gc.callbacks
    return _FULL_COLLECTIONS_SERVING if serving_now else _FULL_COLLECTIONS_PUT_OFF


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    # Called by the collector around each collection; at the end of a full one, nothing
    # unreachable is left among the objects it walked, and all of them are long-lived.
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
