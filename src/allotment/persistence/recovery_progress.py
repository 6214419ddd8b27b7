"""Progress of a long recovery (OPS-P5): records replayed of the total, customers, rate, ETA.

Replay has every record of the tail in memory before it starts, so the total is known and the
ETA is the records left at the rate so far. A recovery shorter than `every_s` says nothing
until its one "recovered" line; a longer one reports every `every_s` seconds (0: every
`CHECK_EVERY` records, which tests use to see the lines without a slow recovery).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ("CHECK_EVERY", "RecoveryProgress")

CHECK_EVERY = 1024  # records between looks at the clock: one time read per 1024 evolves

logger = logging.getLogger("allotment.recovery")


class RecoveryProgress:
    """Call `replayed(n, customers)` as replay goes; it logs when a report is due."""

    def __init__(
        self,
        environment: str,
        total: int,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environment = environment
        self._total = total
        self._every_s = every_s
        self._clock = clock
        self._started = self._last = clock()

    def due(self, replayed: int) -> bool:
        """Cheap: whether `replayed` is a record count at which to look at the clock."""
        return replayed % CHECK_EVERY == 0 and replayed < self._total

    def replayed(self, replayed: int, customers: Callable[[], int]) -> None:
        now = self._clock()
        if now - self._last < self._every_s:
            return
        self._last = now
        elapsed = max(now - self._started, 1e-9)
        rate = replayed / elapsed
        eta = (self._total - replayed) / rate if rate > 0 else float("inf")
        logger.info(
            "recovering %s: %d of %d journal records (%d%%), %d customers, %.0f records/s, "
            "ETA %.0f s",
            self._environment, replayed, self._total, 100 * replayed // self._total,
            customers(), rate, eta,
        )  # fmt: skip
