"""Assembling a server from settings: catalog, prices, clock, journal, keys, system, app."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import msgspec

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.loading import load_catalog, load_price_table
from allotment.payments.stripe_gateway import StripeGateway
from allotment.persistence import datadir_lock
from allotment.persistence.analytics_job import AnalyticsJob
from allotment.persistence.analytics_merged import MergedAnalytics
from allotment.persistence.clock_file import ClockFile
from allotment.persistence.cloud_history import CloudHistory
from allotment.persistence.console_reads import SnapshotReads
from allotment.persistence.journal import Durability
from allotment.persistence.journal_io import JournalIO
from allotment.persistence.keys import KeyStore
from allotment.persistence.memory import MemoryJournal
from allotment.persistence.shard_layout import record_shards, shard_dir
from allotment.persistence.storage import Storage
from allotment.persistence.store_ports import NotificationOutbox
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.clock import Clock, ManualClock, SystemClock
from allotment.runtime.placement import IdMint
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.system import ActorSystem, CheckpointPolicy
from allotment.webhooks.payloads import outbound_events
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService

__all__ = (
    "build_app",
    "build_system",
    "checkout_service",
    "key_store",
    "server_clock",
    "shard_host_system",
    "shard_logs",
    "webhook_service",
)


def build_system(
    settings: Settings,
    clock: Clock | None = None,
    *,
    persistent: bool = True,
    journal_io: JournalIO | None = None,
    queued: bool = False,
    webhooks: WebhookService | None = None,
) -> ActorSystem:
    """The actor system for `settings`, recovered from `settings.data_dir` when `persistent`
        (otherwise state lives in memory only: tests and in-process use). `journal_io` replaces
        the journals' file operations (fault injection in tests); `queued` puts a mailbox between
        the front door and each shard, as a shard in another process has (runtime/queued_shard.py);
    `webhooks` gets every environment's journal records (its outbox, issue 15).

        A persistent system holds a share of the data directory's lock (see `datadir_lock`) from
        before recovery reads the journal until it is garbage.

        Raises:
            datadir_lock.DataDirInUse: another process serves `settings.data_dir`.
    """
    clock_store = None
    if clock is None:
        clock, clock_store = server_clock(settings, persistent)
    if not persistent:
        return _system(settings, clock, persistent, journal_io, queued, clock_store, webhooks)
    return _locked(
        settings,
        lambda: _system(settings, clock, persistent, journal_io, queued, clock_store, webhooks),
    )


def _locked(settings: Settings, build: Callable[[], ActorSystem]) -> ActorSystem:
    """`build()`, holding a share of `settings.data_dir`'s lock while the system lives.

    Raises:
        datadir_lock.DataDirInUse: another process serves `settings.data_dir`.
    """
    lock = datadir_lock.hold(settings.data_dir)
    try:
        system = build()
    except BaseException:
        lock.release()
        raise
    weakref.finalize(system, lock.release)
    return system


def shard_host_system(
    settings: Settings, index: int, *, clock: ManualClock | None = None
) -> ActorSystem:
    """Shard `index` of `settings.shards` as a Ray actor hosts it (runtime/ray_shard.py,
    SCL-31): persistent under `<data-dir>/shards/<index>/`, recovered now, with that
    directory's lock and its own clock (a manual one saved there and moved by the front door),
    and its own webhook service there (its endpoints' copy and message logs, SCL-67).

    Given a `clock`, the shard lives in memory on that clock instead, as each member of the
    in-process `ShardedSystem` does: the test suite's Ray hosts, fresh for every scenario
    (tests/conftest.py, SCL-90).

    Raises:
        datadir_lock.DataDirInUse: another process hosts this shard.
    """
    if clock is not None:  # the test suite's in-memory hosts: no webhook service (SCL-90)
        return _shard_member(settings, clock, False, None, False, index, None)
    own = msgspec.structs.replace(settings, data_dir=shard_dir(settings.data_dir, index), shards=1)
    store_clock, clock_store = server_clock(own, True)
    mint = partial(_mint, index=index, shards=settings.shards)
    webhooks = webhook_service(own)
    webhooks.now = store_clock.now

    def build() -> ActorSystem:
        return _member(own, store_clock, True, None, False, clock_store, webhooks.outbox, mint)

    system = _locked(own, build)
    system.webhooks = webhooks
    return system


def server_clock(settings: Settings, persistent: bool) -> tuple[Clock, ClockFile | None]:
    """The settings' clock. A persistent manual clock resumes from the time it was last moved
    to, and saves every move (OPS-D4); a new one starts at the real time.

    Raises:
        ClockFileInvalid: the saved time is unreadable.
    """
    if settings.clock != "manual":
        return SystemClock(), None
    if not persistent:
        return ManualClock(datetime.now(UTC)), None
    store = ClockFile(settings.data_dir)
    return ManualClock(store.load() or datetime.now(UTC)), store


def _system(
    settings: Settings,
    clock: Clock,
    persistent: bool,
    journal_io: JournalIO | None,
    queued: bool,
    clock_store: ClockFile | None,
    webhooks: WebhookService | None,
) -> ActorSystem:
    """One system over the data directory, or with `settings.shards` above 1, a
    `ShardedSystem` over one member system per shard under `<data-dir>/shards/<k>/`."""
    if settings.shards == 1:
        outbox = webhooks.outbox if webhooks is not None else None
        return _member(settings, clock, persistent, journal_io, queued, clock_store, outbox)
    if persistent:
        record_shards(settings.data_dir, settings.shards)  # SCL-20, SCL-21
    members = [_shard_member(settings, clock, persistent, journal_io, queued, k, webhooks)
               for k in range(settings.shards)]  # fmt: skip
    merged = (MergedAnalytics(settings.data_dir, settings.shards, settings.analytics_every_s)
              if persistent else None)  # fmt: skip
    system = ShardedSystem(
        members, load_catalog(settings.catalog_path, clock.now()),
        load_price_table(settings.model_prices_path), settings, clock_store, merged,
    )  # fmt: skip
    if persistent:  # the console reads the merged snapshot (SCL-74, SCL-102)
        system.analytics_reads = SnapshotReads(settings.data_dir)
    return system


def _shard_member(
    settings: Settings, clock: Clock, persistent: bool, journal_io: JournalIO | None,
    queued: bool, index: int, webhooks: WebhookService | None,
) -> ActorSystem:  # fmt: skip
    """Shard `index`'s own system under `<data-dir>/shards/<index>/`, handing its journal
    records to its own webhook outbox (SCL-64)."""
    member_settings = msgspec.structs.replace(
        settings, data_dir=shard_dir(settings.data_dir, index)
    )
    mint = partial(_mint, index=index, shards=settings.shards)
    outbox = None if webhooks is None else partial(webhooks.outbox, shard=index)
    return _member(member_settings, clock, persistent, journal_io, queued, None, outbox, mint)


def _mint(environment: str, *, index: int, shards: int) -> IdMint:
    return IdMint(environment, index, shards)


def _member(
    settings: Settings,
    clock: Clock,
    persistent: bool,
    journal_io: JournalIO | None,
    queued: bool,
    clock_store: ClockFile | None,
    outbox: Callable[[str], NotificationOutbox] | None,
    mint: Callable[[str], IdMint] | None = None,
) -> ActorSystem:
    storage = analytics = None
    if persistent:
        storage = Storage(
            settings.data_dir, clock.now, Durability(settings.durability),
            settings.segment_size_max, settings.snapshots_kept, journal_io,
            settings.recovery_progress_every_s,
        )  # fmt: skip
        analytics = AnalyticsJob(settings.data_dir, clock.now)
    system = ActorSystem(
        catalog=load_catalog(settings.catalog_path, clock.now()),
        clock=clock,
        prices=load_price_table(settings.model_prices_path),
        settings=settings,
        journal_factory=lambda _environment: MemoryJournal(keep=False),
        timer_interval_s=settings.timer_interval_s,
        storage=storage,
        analytics=analytics,
        analytics_every_s=settings.analytics_every_s,
        queued=queued,
        clock_store=clock_store,
        outbox=outbox,
        mint=mint,
        checkpoint=CheckpointPolicy(
            every_s=settings.snapshot_every_s,
            every_records=settings.snapshot_every_records,
            poll_s=min(1.0, settings.snapshot_every_s / 2),
        ),
    )
    if storage is not None:
        journals = storage  # the journal of an environment is replaced when it is rebuilt
        system.history = CloudHistory(
            settings.data_dir, lambda environment: journals.journal(environment).durable_position
        )
        system.analytics_reads = SnapshotReads(settings.data_dir)
    return system


def checkout_service(settings: Settings, clock: Clock) -> CheckoutService:
    """Stripe checkout when a secret key is configured; otherwise checkout is disabled (STR-1)."""
    gateway = None
    if settings.stripe_secret_key:
        gateway = StripeGateway(
            settings.stripe_secret_key, settings.stripe_success_url, settings.stripe_cancel_url,
            settings.stripe_api_base, settings.stripe_timeout_s,
        )  # fmt: skip
    return CheckoutService(gateway, clock)


def key_store(settings: Settings) -> KeyStore:
    """Keys given on the command line, plus those stored (as hashes) under the data dir."""
    store = KeyStore(settings.data_dir / "api_keys.json")
    for key in settings.api_keys:
        store.add(key)
    return store


def webhook_service(settings: Settings, *, persistent: bool = True) -> WebhookService:
    """Endpoints and message logs under `<data-dir>/webhooks` (in memory when not
    `persistent`), sent by the protocol sender (requests written straight onto asyncio
    transports; it checks addresses at send, WHK-D31); the journal's notification facts
    rendered by `payloads.outbound_events`. With shards,
    each shard's message logs are under its own `<data-dir>/shards/<k>/webhooks` (SCL-64)."""
    directory = settings.data_dir / "webhooks" if persistent else None
    return WebhookService(
        directory, SystemClock().now,
        ProtocolSender(allow_private=settings.allow_private_webhooks),
        outbound_events, allow_private=settings.allow_private_webhooks,
        backlog_max=settings.webhook_backlog_max,
        retention=timedelta(days=settings.webhook_retention_days),
        shard_logs=shard_logs(settings, persistent),
    )  # fmt: skip


def shard_logs(settings: Settings, persistent: bool) -> list[Path | None]:
    """Where each shard's webhook message logs are kept (SCL-64)."""
    if settings.shards == 1:
        return [settings.data_dir / "webhooks" if persistent else None]
    return [
        shard_dir(settings.data_dir, k) / "webhooks" if persistent else None
        for k in range(settings.shards)
    ]


def build_app(
    settings: Settings, clock: Clock | None = None, on_started: Callable[[], None] | None = None
) -> FastPath:
    """The served app, its system recovered from `settings.data_dir`; `on_started` runs when
    it serves (after recovery and once the system's tasks run)."""
    webhooks = webhook_service(settings)
    system = build_system(settings, clock, webhooks=webhooks)
    webhooks.now = system.clock.now  # the server's one clock (manual in tests: retries follow it)
    return create_app(
        settings, system, key_store(settings), checkout_service(settings, system.clock),
        on_started=on_started, webhooks=webhooks,
    )  # fmt: skip
