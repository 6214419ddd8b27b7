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
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("recovering", "settle")

_FULL_COLLECTIONS_PUT_OFF = 1_000  # young collections between full ones (CPython's default: 10)

# At exit, hand the frozen objects back to the collector, so interpreter shutdown releases
# them (native extensions such as DuckDB's report what is never released as leaks).
atexit.register(gc.unfreeze)


def settle(*, collect: bool = True) -> None:
    """Freeze what is alive now. `collect=False` skips the collection before the freeze, for
    the end of recovery: a collection then would walk the whole recovered state."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_COLLECTIONS_PUT_OFF)
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
