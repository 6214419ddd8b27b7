"""A capacity model for scale-out (issue 19, docs/scale-out.md "Capacity"): how many shard
actors, front-door cores and nodes serve 10M customers at 1M events/s, fitted to figures
measured on this machine, with a simulation of a skewed customer distribution placed by the
real placement hash.

    PYTHONPATH=src .venv/bin/python -m bench.capacity_model [--customers 10000000] [--save]

Part 1 measures one shard in one process on this machine: durable ingest (fsync, 64
concurrent senders, the group commit a micro-batched actor sees) and the journal bytes an
event adds. Part 2 reads memory per customer and per remembered key from the committed
bench_scale and bench_durability results. Part 3 places `customers` customers with
`placement_tag` (SCL-1) and gives customer i a share of the events proportional to i^-s (Zipf;
s = 0 is uniform). For each s it finds the smallest N whose hottest shard stays under the
utilisation target, and reports the hottest customer's own rate, which no N can split: one
customer is one actor's turns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from allotment.runtime.placement import placement_tag
from allotment.runtime.ports import CustomerLookup
from bench.bench_durability import _event, _ingest_rates, _populate, _system
from bench.report import machine

RESULTS = Path(__file__).resolve().parent / "results"
SCALE_RESULT = RESULTS / "2026-11-21-61582d7.json"  # bench_scale at 1M customers
TARGET_EVENTS_PER_S = 1_000_000
TARGET_CUSTOMERS = 10_000_000
UTILISATION = 0.6  # headroom for checks, timers, snapshots and a restarted neighbour
NODE_CORES, NODE_MEMORY = 16, 64 * 2**30
SKEWS = (0.0, 0.6, 0.8, 1.0)


async def _journal_bytes_per_event(data_dir: Path, events: int = 5000) -> float:
    """The bytes the journal grows by per ingested event (the fsync'd bandwidth per event)."""
    system = _system(data_dir, "fsync")
    async with system.running():
        shard = system.shard("test")
        await _populate(shard, 100)
        await shard.journal.flush()
        before = _tree_bytes(data_dir)
        for n in range(events):
            await shard.ingest(CustomerLookup(external_id=f"c{n % 100}"), _event(f"j{n}"), None)
        await shard.journal.flush()
        return (_tree_bytes(data_dir) - before) / events


def _tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _measured_shard() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as rates, tempfile.TemporaryDirectory() as bytes_dir:
        figures = anyio.run(_ingest_rates, Path(rates))
        figures["journal_bytes_per_event"] = anyio.run(_journal_bytes_per_event, Path(bytes_dir))
    return {key: round(value, 1) for key, value in figures.items()}


def _committed_memory() -> dict[str, float]:
    """Memory per customer (the larger of built and recovered, at 1M customers) and per
    remembered event key, from the committed bench_scale run."""
    scale = json.loads(SCALE_RESULT.read_text())["parts"]["scale"]["runs"][1]
    return {
        "bytes_per_customer": max(
            scale["rss_per_customer_excluding_keys_bytes"],
            scale["recovered_rss_per_customer_excluding_keys_bytes_estimate"],
        ),
        "bytes_per_remembered_key": scale["index_bytes_per_added_key"],
        "source": f"{SCALE_RESULT.name} parts.scale.runs[1] (1,000,000 customers)",
    }


def _tags(customers: int) -> array[int]:
    return array("I", (placement_tag("live", f"cus_{i}") for i in range(customers)))


def _shares(customers: int, skew: float) -> array[float]:
    weights = array("d", ((i + 1) ** -skew for i in range(customers)))
    total = math.fsum(weights)
    return array("d", (w / total for w in weights))


def _hottest_shard_share(tags: array[int], shares: array[float], shards: int) -> float:
    loads = [0.0] * shards
    for tag, share in zip(tags, shares, strict=True):
        loads[tag % shards] += share
    return max(loads)


def _shards_needed(tags: array[int], shares: array[float], per_shard: float) -> dict[str, Any]:
    """The smallest N whose hottest shard carries at most `per_shard` events/s, found by
    doubling then bisection (the hottest shard's load falls as N grows, if not strictly)."""
    rate = TARGET_EVENTS_PER_S
    hottest_customer = max(shares) * rate
    if hottest_customer > per_shard:
        # No N helps: a customer is one actor's turns. Count the customers over the line.
        over = sum(1 for share in shares if share * rate > per_shard)
        return {
            "shards": None,
            "hottest_customer_events_per_s": round(hottest_customer),
            "customers_over_one_shard": over,
        }
    low, high = 1, max(1, math.ceil(rate / per_shard))
    while _hottest_shard_share(tags, shares, high) * rate > per_shard:
        low, high = high, high * 2
    while low < high:
        middle = (low + high) // 2
        if _hottest_shard_share(tags, shares, middle) * rate > per_shard:
            low = middle + 1
        else:
            high = middle
    hottest = _hottest_shard_share(tags, shares, high)
    return {
        "shards": high,
        "hottest_shard_over_mean": round(hottest * high, 3),
        "hottest_customer_events_per_s": round(hottest_customer),
    }


def _nodes(shards: int, shard_memory: float, front_door_cores: int) -> int:
    by_cores = math.ceil((shards + front_door_cores) / NODE_CORES)
    by_memory = math.ceil(shards * shard_memory / NODE_MEMORY)
    return max(by_cores, by_memory)


def model(customers: int) -> dict[str, Any]:
    shard = _measured_shard()
    memory = _committed_memory()
    per_shard = shard["ingest_fsync_64_concurrent_events_per_s"] * UTILISATION
    # The one-process HTTP batch ingest (parse, validate, turn, fsync) on 2 cores: the front
    # door does a part of that work, so half of it per core is a floor for its parsing rate.
    http = json.loads(SCALE_RESULT.read_text())["parts"]["http"]["batch_ingest"]
    front_door_per_core = http["events_per_s"] / 2
    front_door_cores = math.ceil(TARGET_EVENTS_PER_S / front_door_per_core)
    tags = _tags(customers)
    skewed: dict[str, Any] = {}
    for skew in SKEWS:
        row = _shards_needed(tags, _shares(customers, skew), per_shard)
        if row["shards"] is not None:
            memory_per_shard = TARGET_CUSTOMERS / row["shards"] * memory["bytes_per_customer"]
            row["memory_per_shard_gib"] = round(memory_per_shard / 2**30, 2)
            row["nodes"] = _nodes(row["shards"], memory_per_shard, front_door_cores)
        skewed[f"zipf_s={skew}"] = row
    return {
        "inputs": {
            "shard_measured_here": shard,
            "memory_committed": memory,
            "utilisation": UTILISATION,
            "events_per_s_per_shard_at_utilisation": round(per_shard),
            "front_door_events_per_s_per_core_floor": round(front_door_per_core),
            "front_door_cores": front_door_cores,
            "node": {"cores": NODE_CORES, "memory_gib": NODE_MEMORY // 2**30},
            "simulated_customers": customers,
        },
        "journal_mb_per_s_per_shard": round(per_shard * shard["journal_bytes_per_event"] / 1e6, 1),
        "remembered_keys_gb_per_day_cluster": round(
            TARGET_EVENTS_PER_S * 86_400 * memory["bytes_per_remembered_key"] / 1e9
        ),
        "by_skew": skewed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=TARGET_CUSTOMERS)
    parser.add_argument("--save", action="store_true")
    arguments = parser.parse_args()
    started = time.perf_counter()
    result = {
        "benchmark": "capacity_model",
        "command": f"PYTHONPATH=src .venv/bin/python -m bench.capacity_model "
        f"--customers {arguments.customers}" + (" --save" if arguments.save else ""),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_at_start": os.getloadavg(),
        **model(arguments.customers),
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=1)
    print(text)
    if arguments.save:
        day = datetime.now(UTC).date().isoformat()
        (RESULTS / f"{day}-capacity-model.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
