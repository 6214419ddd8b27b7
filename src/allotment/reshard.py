"""`allotment reshard --data-dir D --shards M`: move every customer of a stopped sharded data
directory onto shard `tag mod M` (SCL-23..SCL-26).

The old shards are recovered as start-up recovers them (snapshot, then journal tail), so what
moves is exactly what a server would have served. Each new shard gets one snapshot and an
empty journal: its customers, and what every shard holds for the environment (the catalog,
the model prices, the union of the event keys, the unapplied payments its session places).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.domain.cost import PriceTable
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.state import CustomerState
from allotment.persistence import datadir_lock
from allotment.persistence.compact_state import DICTIONARY
from allotment.persistence.file_modes import PRIVATE_DIRECTORY
from allotment.persistence.shard_layout import COUNT_FILE, recorded_shards
from allotment.persistence.snapshots import (
    SnapshotFile,
    SnapshotHeader,
    encode_customers,
    frame,
    header_frame,
)
from allotment.persistence.storage import CHUNK_CUSTOMERS
from allotment.runtime.clock import SystemClock
from allotment.runtime.idempotency import EventKeyIndex
from allotment.runtime.placement import placement_tag, shard_of, tag_of_id
from allotment.runtime.sharded_system import ShardedSystem
from allotment.wiring import build_system

__all__ = ("ReshardRefused", "ReshardReport", "reshard")

STAGING = "shards.reshard"  # the new shards while they are written (SCL-25)


class ReshardRefused(RuntimeError):
    """Nothing was changed: the reason is the message."""


@dataclass(frozen=True, slots=True)
class ReshardReport:
    before: int
    after: int
    customers: dict[str, list[int]]  # environment -> customers per new shard
    backup: Path  # the old shards, as they were


@dataclass
class _Environment:
    """One environment of the old shards, merged."""

    catalog: Catalog
    prices: PriceTable | None
    position: int = 0  # the highest journal position any old shard reached
    customers: list[CustomerState] = field(default_factory=list)
    payments: list[PaymentRecord] = field(default_factory=list)
    keys: EventKeyIndex = field(default_factory=lambda: EventKeyIndex(None))
    numbers: dict[str, int] = field(default_factory=dict)  # the highest taken, by kind


def reshard(settings: Settings, shards: int) -> ReshardReport:
    """Rewrite `settings.data_dir`'s shards as `shards` shards; the old ones are kept aside.

    Raises:
        ReshardRefused: M is not a new number of shards, the directory is not sharded, or a
            server holds it.
    """
    data_dir = settings.data_dir
    before = recorded_shards(data_dir)
    if shards < 1:
        raise ReshardRefused(f"--shards must be at least 1, not {shards}")
    if before is None:
        raise ReshardRefused(f"{data_dir} is not a sharded data directory (no shards/count)")
    if shards == before:
        raise ReshardRefused(f"{data_dir} already holds {before} shards: nothing to do")
    if shards == 1:
        raise ReshardRefused("one shard is served from the data directory itself: not supported")
    try:
        lock = datadir_lock.hold(data_dir)
    except datadir_lock.DataDirInUse as in_use:
        raise ReshardRefused(f"{in_use}; stop the server first") from None
    try:
        environments = _load(settings, before)
        staging = data_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)  # left by a reshard that stopped midway
        customers = {
            env: _write(staging, env, loaded, shards) for env, loaded in environments.items()
        }
        backup = _swap(data_dir, staging, shards)
    finally:
        lock.release()
    return ReshardReport(before, shards, customers, backup)


def _load(settings: Settings, before: int) -> dict[str, _Environment]:
    """Every environment of the `before` old shards, recovered as start-up recovers them
    (SCL-23), with shard 0's catalog and prices: a catalog change reaches it first (SCL-13)."""
    system = build_system(msgspec.structs.replace(settings, shards=before), SystemClock())
    assert isinstance(system, ShardedSystem)
    merged: dict[str, _Environment] = {}
    for member in system.members:
        assert member.storage is not None
        for environment in member.storage.existing_environments():
            shard = member.shard(environment)
            journal = member.storage.journal(environment)
            loaded = merged.get(environment)
            if loaded is None:
                loaded = merged[environment] = _Environment(shard.catalog, shard.prices.recorded)
            loaded.position = max(loaded.position, journal.position)
            loaded.customers.extend(shard.states())
            loaded.payments.extend(shard.environment_payments.values())
            for kind, sequence in shard.numbers_taken().items():  # SCL-72
                loaded.numbers[kind] = max(loaded.numbers.get(kind, 0), sequence)
            for digest, day in shard.event_keys.live():
                loaded.keys.remember(digest, day)
    return merged


def _write(staging: Path, environment: str, loaded: _Environment, shards: int) -> list[int]:
    """One snapshot per new shard at the highest old position (SCL-24): the new journals
    start after it, so no customer's own position can make recovery skip a new record."""
    placed: list[list[CustomerState]] = [[] for _ in range(shards)]
    for state in loaded.customers:
        placed[shard_of(tag_of_id(state.id), shards)].append(state)
    payments: list[list[PaymentRecord]] = [[] for _ in range(shards)]
    for record in loaded.payments:  # where the router looks for its session (SCL-9)
        tag = placement_tag(environment, "payment\x00" + record.payment.session_id)
        payments[shard_of(tag, shards)].append(record)
    for index in range(shards):
        directory = staging / str(index)
        (directory / "journal" / environment).mkdir(parents=True, mode=PRIVATE_DIRECTORY)
        snapshot = SnapshotFile(directory / "snapshots" / environment, loaded.position)
        try:
            for buffers in _frames(loaded, placed[index], payments[index]):
                snapshot.write(buffers)
            snapshot.commit(keep=1)
        except BaseException:
            snapshot.abandon()
            raise
    return [len(states) for states in placed]


def _frames(
    loaded: _Environment, states: list[CustomerState], payments: list[PaymentRecord]
) -> Iterator[list[bytes]]:
    """A snapshot's frames, as a checkpoint writes them (persistence/storage.py)."""
    with loaded.keys.exported() as keys:
        yield header_frame(
            SnapshotHeader(
                position=loaded.position,
                created_at=datetime.now(UTC),
                catalog=loaded.catalog,
                customers=len(states),
                chunks=-(-len(states) // CHUNK_CUSTOMERS),
                key_tables=len(keys.slots_used),
                key_slots_used=keys.slots_used,
                keys_per_day=keys.keys_per_day,
                unapplied_payments=payments,
                prices=loaded.prices,
                sequences=loaded.numbers,
                dictionary=DICTIONARY,
            )
        )
        for start in range(0, len(states), CHUNK_CUSTOMERS):
            yield encode_customers(states[start : start + CHUNK_CUSTOMERS])
        for table in keys.tables:
            yield frame(table)


def _swap(data_dir: Path, staging: Path, shards: int) -> Path:
    """Put the new shards in place (SCL-25): `shards/` moves aside to a backup, the staged
    directory is renamed to `shards/`, and the directory entry is synced. A crash between the
    two renames leaves no `shards/`: the next reshard refuses, and the operator renames one
    of the two back (both are complete)."""
    count = staging / COUNT_FILE
    count.write_text(f"{shards}\n")
    _fsync(count)
    backup = data_dir / f"shards.before-reshard-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    os.rename(data_dir / "shards", backup)
    os.rename(staging, data_dir / "shards")
    _fsync(data_dir)
    return backup


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
