"""What one hot customer's actor sustains without HTTP (issue 14's 5,000 hot pairs/s).

The HTTP bench (`bench/http/reservations.py`) puts the hot customer against what the framework
itself answers; this one asks the other half of the question: how many reserve+commit pairs per
second the shard does for one customer, with the file journal and an fsync before every
acknowledgement, `--clients` clients at once (as wrk's 64 connections: their commits share
fsyncs), on uvloop as granian runs the server. Ingest spread over the customers is measured in
the same rounds for scale. Rounds alternate, figures are medians.

    PYTHONPATH=$PWD/src:$PWD .venv/bin/python -m bench.bench_hot_pairs \
        [--customers 1000] [--pairs 20000] [--clients 64] [--rounds 3] [--save NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop

from allotment.config import Settings
from allotment.domain.commands import CommitReservation, CommitUnits, HoldItem, Reserve
from allotment.domain.reservation_replies import Committed, Reserved
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup
from allotment.wiring import build_system
from bench.bench_engine import _event, _populate
from bench.http.report import provenance, publish

HOLD = (HoldItem(feature_key="ai_chat", units=Decimal(1)),)  # credit-backed, as over HTTP
COMMIT = (CommitUnits(feature_key=None, usage_units=Decimal(1)),)


async def _clients(clients: int, operations: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second of `clients` concurrent loops sharing `operations`."""

    async def client(first: int) -> None:
        for i in range(first, operations, clients):
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return operations / (time.perf_counter() - started)


async def _round(
    shard: LocalShard, customers: int, pairs: int, clients: int, n: int
) -> dict[str, float]:
    hot = CustomerLookup(external_id="c0")

    async def pair(i: int) -> None:
        key = f"r{n}-{i}"
        held = await shard.reserve(hot, Reserve(reservation_id=key, items=HOLD))
        assert isinstance(held, Reserved), held
        command = CommitReservation(reservation_id=key, items=COMMIT, occurred_at=shard.now())
        assert isinstance(await shard.settle(key, command, None), Committed)

    async def ingest(i: int) -> None:
        lookup = CustomerLookup(external_id=f"c{i % customers}")
        await shard.ingest(lookup, _event(shard, f"e{n}-{i}"), None)

    return {
        "hot_pairs_per_s": await _clients(clients, pairs, pair),
        "ingest_spread_per_s": await _clients(clients, pairs, ingest),
    }


async def measure(customers: int, pairs: int, clients: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="allotment-hot-pairs-") as directory:
        settings = Settings(data_dir=Path(directory), durability="fsync")
        system = build_system(settings)
        async with system.running():
            shard = system.shard("test")
            assert isinstance(shard, LocalShard)
            await _populate(shard, customers)
            samples = [await _round(shard, customers, pairs, clients, n) for n in range(rounds)]
    medians = {name: statistics.median(s[name] for s in samples) for name in samples[0]}
    return {
        "customers": customers,
        "pairs_per_round": pairs,
        "clients": clients,
        "rounds": rounds,
        "median_per_s": {k: round(v) for k, v in medians.items()},
        "samples_per_s": [{k: round(v) for k, v in s.items()} for s in samples],
        "hot_pair_over_ingest_cost": round(
            medians["ingest_spread_per_s"] / medians["hot_pairs_per_s"], 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save", metavar="NAME", help="write bench/results/<date>-NAME.json")
    args = parser.parse_args()
    figures = uvloop.run(measure(args.customers, args.pairs, args.clients, args.rounds))
    publish({**provenance("bench.bench_hot_pairs"), **figures}, args.save)


if __name__ == "__main__":
    main()
