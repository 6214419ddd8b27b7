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
from typing import TYPE_CHECKING

from allotment.domain.cost import PricesReplaced, PriceTable, price_table_errors

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("ShardPrices", "replace_prices")

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


async def replace_prices(shard: LocalShard, table: PriceTable) -> PriceTable:
    """Check, journal and apply `shard`'s new model price table (OPS-D6): events accepted from now
    on are priced with it.

    Raises:
        ValueError: the table is invalid (each problem named); nothing changed.
    """
    errors = price_table_errors(table)
    if errors:
        raise ValueError("; ".join(errors))
    shard.turns.admit(write=True)
    fact = PricesReplaced(at=shard.now(), table=table)
    position = shard.turns.commit_catalog(fact)
    shard.prices.apply(fact)
    await shard.turns.durable(position)
    return table
