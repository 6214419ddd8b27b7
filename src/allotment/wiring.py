"""Assembling a server from settings: catalog, prices, clock, journal, keys, system, app."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Litestar

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.journal import Durability
from allotment.persistence.keys import KeyStore
from allotment.persistence.memory import MemoryJournal
from allotment.runtime.clock import Clock, ManualClock, SystemClock
from allotment.runtime.storage import Storage
from allotment.runtime.system import ActorSystem, CheckpointPolicy

__all__ = ("build_app", "build_system", "key_store")


def build_system(
    settings: Settings, clock: Clock | None = None, *, persistent: bool = True
) -> ActorSystem:
    """The actor system for `settings`, recovered from `settings.data_dir` when `persistent`
    (otherwise state lives in memory only: tests and in-process use)."""
    if clock is None:
        clock = ManualClock(datetime.now(UTC)) if settings.clock == "manual" else SystemClock()
    storage = None
    if persistent:
        storage = Storage(
            settings.data_dir, clock, Durability(settings.durability),
            settings.segment_size_max, settings.snapshots_kept,
        )  # fmt: skip
    return ActorSystem(
        catalog=load_catalog(settings.catalog_path, clock.now()),
        clock=clock,
        prices=load_price_table(settings.model_prices_path),
        settings=settings,
        journal_factory=lambda _environment: MemoryJournal(keep=False),
        timer_interval_s=settings.timer_interval_s,
        storage=storage,
        analytics_every_s=settings.analytics_every_s,
        checkpoint=CheckpointPolicy(
            every_s=settings.snapshot_every_s,
            every_records=settings.snapshot_every_records,
            poll_s=min(1.0, settings.snapshot_every_s / 2),
        ),
    )


def key_store(settings: Settings) -> KeyStore:
    """Keys given on the command line, plus those stored (as hashes) under the data dir."""
    store = KeyStore(settings.data_dir / "api_keys.json")
    for key in settings.api_keys:
        store.add(key)
    return store


def build_app(settings: Settings, clock: Clock | None = None) -> Litestar:
    return create_app(settings, build_system(settings, clock), key_store(settings))
