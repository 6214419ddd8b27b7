"""Assembling a server from settings: catalog, prices, clock, journal, keys, system, app."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.loading import load_catalog, load_price_table
from allotment.payments.stripe_gateway import StripeGateway
from allotment.persistence import datadir_lock
from allotment.persistence.analytics_job import AnalyticsJob
from allotment.persistence.clock_file import ClockFile
from allotment.persistence.cloud_history import CloudHistory
from allotment.persistence.console_reads import SnapshotReads
from allotment.persistence.journal import Durability
from allotment.persistence.journal_io import JournalIO
from allotment.persistence.keys import KeyStore
from allotment.persistence.memory import MemoryJournal
from allotment.persistence.storage import Storage
from allotment.runtime.checkout import CheckoutService
from allotment.runtime.clock import Clock, ManualClock, SystemClock
from allotment.runtime.system import ActorSystem, CheckpointPolicy
from allotment.webhooks.payloads import outbound_events
from allotment.webhooks.pooled_sender import PooledSender
from allotment.webhooks.service import WebhookService

__all__ = ("build_app", "build_system", "checkout_service", "key_store", "webhook_service")


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
        clock, clock_store = _clock(settings, persistent)
    lock = datadir_lock.hold(settings.data_dir) if persistent else None
    try:
        system = _system(settings, clock, persistent, journal_io, queued, clock_store, webhooks)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is not None:
        weakref.finalize(system, lock.release)
    return system


def _clock(settings: Settings, persistent: bool) -> tuple[Clock, ClockFile | None]:
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
        outbox=webhooks.outbox if webhooks is not None else None,
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
    `persistent`), sent by the lean h11 sender (which checks addresses at send, WHK-D31);
    the journal's notification facts rendered by `payloads.outbound_events`."""
    return WebhookService(
        settings.data_dir / "webhooks" if persistent else None, SystemClock().now,
        PooledSender(allow_private=settings.allow_private_webhooks),
        outbound_events, allow_private=settings.allow_private_webhooks,
        backlog_max=settings.webhook_backlog_max,
        retention=timedelta(days=settings.webhook_retention_days),
    )  # fmt: skip


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
