"""`Histogram`: counts of observations in fixed buckets, as plain integers.

The hot path records into these (a bisect and two additions, no lock: everything that observes
runs on the one event loop, or on the journal's one writer), and `/metrics` turns them into
Prometheus histograms only when scraped (`http.metrics`). A leaf: it imports nothing of ours,
so the journal, the runtime and the front door can all record into one.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ("BATCH_BUCKETS", "DURATION_BUCKETS", "LATENCY_BUCKETS", "Histogram")

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip
"""Seconds, for requests and journal commits: a check takes tens of microseconds, an fsync
about a millisecond, so Prometheus's default buckets (from 5 ms) would put them all in one."""

DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Seconds, for checkpoints and analytics snapshots: from an empty server to a million
customers (44 s and 132 s in bench/README.md's scale run)."""

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
"""Records per group commit: one per turn on an idle server, hundreds under load."""


class Histogram:
    """Observations counted per bucket (upper bounds `bounds`, plus one for larger values), with
    their sum. Counts only grow, as a Prometheus histogram's do."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one counts values above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le, "<=").
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """The Prometheus form: (upper bound, observations <= it), ending with "+Inf"."""
        buckets: list[tuple[str, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return buckets
