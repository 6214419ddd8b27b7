"""The model price table of one environment (OPS-D6): the file's until an admin replaces it.

A replacement is an environment fact (`PricesReplaced`), journalled like a catalog change,
replayed by recovery and kept in snapshots, so a restart prices events as before it. At
start, a price file dated later than the recorded table replaces it (and that is journalled
too): a package upgrade that ships newer prices applies them, and an admin's table stays until
then. Prices never change events already recorded: each event stores its cost when accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime

from allotment.domain.cost import PricesReplaced, PriceTable

__all__ = ("ShardPrices",)

logger = logging.getLogger("allotment.prices")


class ShardPrices:
    """What prices the events of one environment: `current`, and whether it was recorded."""

    __slots__ = ("current", "file", "recorded")

    def __init__(self, file: PriceTable) -> None:
        self.file = file  # the price file's table, given at start
        self.current = file
        self.recorded: PriceTable | None = None  # the last table journalled, if any

    def restore(self, recorded: PriceTable | None) -> None:
        """A snapshot's recorded table (None: the environment never recorded one)."""
        if recorded is not None:
            self.current = self.recorded = recorded

    def apply(self, fact: PricesReplaced) -> None:
        """Apply a replacement (journalled already, or replayed)."""
        self.current = self.recorded = fact.table

    def newer_file(self, now: datetime) -> PricesReplaced | None:
        """At the end of recovery: the fact that installs the price file, when it is dated
        later than the recorded table (OPS-D6); None keeps what is recorded."""
        recorded = self.recorded
        if recorded is None or self.file.as_of_date <= recorded.as_of_date:
            return None
        logger.info(
            "model prices of %s from the price file replace those recorded as of %s",
            self.file.as_of,
            recorded.as_of,
        )
        return PricesReplaced(at=now, table=self.file)
