"""Compact customer state (issue 21, items 1 and 2): what one customer of bench_scale's shape
costs decoded and stored, what a cold customer's first touch costs, and the per-feature memory
budget (bytes added per reservation, per OpenMeter entitlement, per grant, per webhook
endpoint).

    .venv/bin/python -m bench.bench_compact [--customers 2000] [--items 20] [--out f.json]

In memory (no disk): `--customers` customers are built as bench_scale builds them (1
subscription to a plan with 3 metered features and a credit pool, its paid invoice, one event
per feature). Then:

- `decoded_bytes`: the heap a decoded `CustomerState` holds (tracemalloc, around a decode of
  its stored form), `stored_bytes`: its stored form (persistence/compact_state.py, with the
  `bytes` object's header), `index_bytes`: what the directory's indexes hold per customer
  (tracemalloc around indexing every customer's keys in an empty directory; in the budget,
  one customer's growth);
- `cold_touch_us`: the first touch of a cold customer, i.e. inflating and decoding its stored
  form into an actor (`CustomerDirectory._warm` without the bookkeeping), median and p99 over
  every customer, each decoded once; `evict_us`: encoding a changed customer back;
- the budget: `--items` reservations (one item each, held), OpenMeter metered entitlements
  (each on its own feature key), grants (on one entitlement) are added to one customer through
  the shard's own calls, and the growth of each figure above is divided by `--items`. Webhook
  endpoints are the environment's, not a customer's: an endpoint's figure is its `Endpoint`
  record as the service keeps it (tracemalloc around decoding `--items` of them).

Prints one JSON document. Wall-clock figures are from a shared machine: compare ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import msgspec

from allotment.config import DEFAULT_CATALOG, Settings
from allotment.domain.commands import HoldItem, Reserve
from allotment.domain.om_commands import CreateEntitlement, IssueGrant, OpenMeterCommand
from allotment.domain.om_state import EntitlementKind
from allotment.domain.replies import Rejected
from allotment.domain.state import CustomerState
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.compact_state import decode_state, encode_stored, keys_of
from allotment.persistence.memory import MemoryJournal
from allotment.runtime.actor import CustomerActor
from allotment.runtime.clock import ManualClock
from allotment.runtime.directory import CustomerDirectory
from allotment.runtime.local_shard import LocalShard
from allotment.runtime.ports import CustomerLookup, OmTarget
from allotment.runtime.system import ActorSystem
from allotment.webhooks.endpoints import Endpoint
from bench import bench_scale
from bench.http.state import ENVIRONMENT, customer_ref

__all__ = ("main",)


def _heap(make: Callable[[], object]) -> int:
    """Bytes the object `make` returns keeps allocated."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = make()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


def _figures(state: CustomerState) -> dict[str, int]:
    stored = encode_stored(state)

    def indexed() -> CustomerDirectory:
        directory = CustomerDirectory()
        directory._index_keys(state.id, keys_of(state))
        return directory

    empty = _heap(CustomerDirectory)
    return {
        "decoded_bytes": _heap(lambda: decode_state(stored)),
        "stored_bytes": sys.getsizeof(stored),
        "index_bytes": _heap(indexed) - empty,
    }


def _index_bytes(states: list[CustomerState]) -> float:
    """The directory's indexes per customer, over all of them (a dict's first entries cost
    more than its average: one customer alone overstates it)."""

    def indexed() -> CustomerDirectory:
        directory = CustomerDirectory()
        for state in states:
            directory._index_keys(state.id, keys_of(state))
        return directory

    return round((_heap(indexed) - _heap(CustomerDirectory)) / len(states), 1)


def _system(catalog: Path) -> ActorSystem:
    clock = ManualClock(bench_scale.START)
    return ActorSystem(
        catalog=load_catalog(catalog, clock.now()),
        clock=clock,
        prices=load_price_table(None),
        settings=Settings(clock="manual", warm_customers_max=1 << 30),
        journal_factory=lambda _environment: MemoryJournal(keep=False),
    )


async def _build(shard: LocalShard, customers: int) -> None:
    plan, _ = bench_scale._choose_plan(shard.catalog)
    features = bench_scale._metered(plan)[:3]
    for index in range(customers):
        await bench_scale._customer(shard, plan, features, index)


def _timed_us(work: Callable[[], object], count: int) -> list[float]:
    out = []
    gc.disable()  # a collection's pause is not the touch's (the server freezes its heap)
    try:
        for _ in range(count):
            started = time.perf_counter_ns()
            work()
            out.append((time.perf_counter_ns() - started) / 1000)
    finally:
        gc.enable()
    return out


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[int(len(ordered) * 0.9)], 1),
        "p99": round(ordered[int(len(ordered) * 0.99)], 1),
    }


def _touches(states: list[CustomerState]) -> dict[str, Any]:
    forms = iter([encode_stored(s) for s in states])
    touch = _timed_us(lambda: CustomerActor(decode_state(next(forms))), len(states))
    again = iter(states)
    evict = _timed_us(lambda: encode_stored(next(again)), len(states))
    return {"cold_touch_us": _summary(touch), "evict_us": _summary(evict)}


async def _grow(shard: LocalShard, items: int) -> dict[str, dict[str, float]]:
    """The budget: each feature's growth of one customer's figures, per item."""
    ref = customer_ref(0)
    lookup = CustomerLookup(external_id=ref)
    target = OmTarget(customer=ref)
    out: dict[str, dict[str, float]] = {}

    async def reservation(n: int) -> None:
        hold = (HoldItem(feature_key="api_calls", units=Decimal(1)),)
        await shard.reserve(lookup, Reserve(reservation_id=f"r{n}", items=hold))

    features = [f.key for f in shard.catalog.features.values()]  # one entitlement each

    async def entitlement(n: int) -> None:
        create = CreateEntitlement(
            feature_key=features[n], kind=EntitlementKind.METERED, usage_period="MONTH"
        )
        await _shown(shard, target, create)

    async def grant(n: int) -> None:
        first = next(iter(_state(shard, lookup).entitlements))
        issue = IssueGrant(entitlement=first, amount=Decimal(100), effective_at=shard.now())
        await _shown(shard, target, issue)

    for name, add, count in (("reservation", reservation, items),
                             ("openmeter_entitlement", entitlement, len(features)),
                             ("openmeter_grant", grant, items)):  # fmt: skip
        before = _figures(_state(shard, lookup))
        for n in range(count):
            await add(n)
        after = _figures(_state(shard, lookup))
        out[name] = {k: round((after[k] - before[k]) / count, 1) for k in before}
        out[name]["items"] = count
    return out


async def _shown(shard: LocalShard, target: OmTarget, command: OpenMeterCommand) -> None:
    answer = await shard.openmeter_turn(target, command, lambda _s, shown, _n: shown)
    assert not isinstance(answer, Rejected), answer


def _state(shard: LocalShard, lookup: CustomerLookup) -> CustomerState:
    actor = shard.directory.find(lookup)
    assert actor is not None
    return actor.state


def _endpoint(items: int) -> float:
    endpoints = [
        Endpoint(
            id=f"ep_{uuid.uuid4().hex[:24]}",
            environment=ENVIRONMENT,
            url=f"https://hooks.example.com/allotment/{n}",
            secret=f"whsec_{uuid.uuid4().hex}",
            created_at=datetime.now(UTC),
        )
        for n in range(items)
    ]
    encoded = msgspec.msgpack.encode(endpoints)
    decoder = msgspec.msgpack.Decoder(list[Endpoint])
    return round(_heap(lambda: decoder.decode(encoded)) / items, 1)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as base:
        catalog = Path(base) / "catalog.toml"
        catalog.write_text(DEFAULT_CATALOG.read_text() + bench_scale.SCALE_PLAN)
        system = _system(catalog)
        shard = system.shard(ENVIRONMENT)
        await _build(shard, args.customers)
        states = list(shard.directory.states())
        shape = {**_figures(states[-1]), "index_bytes": _index_bytes(states)}
        budget = await _grow(shard, args.items)
    budget["webhook_endpoint"] = {"decoded_bytes": _endpoint(args.items)}
    return {
        "command": " ".join(sys.argv),
        "customers": args.customers,
        "customer": shape,
        **_touches(states),
        "budget_per_item": budget,
    }


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    document = anyio.run(_run, args)
    text = json.dumps(document, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return document


if __name__ == "__main__":
    main(sys.argv[1:])
