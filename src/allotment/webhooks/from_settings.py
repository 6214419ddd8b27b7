"""The webhook service a server's settings describe, built here rather than in wiring.py so
the delivery worker (webhooks/worker.py, its own process) builds the same one without
importing the HTTP app: importing wiring.py costs seconds, this module a fraction of that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from allotment.config import Settings
from allotment.persistence.shard_layout import shard_dir
from allotment.webhooks.payloads import outbound_events
from allotment.webhooks.protocol_sender import ProtocolSender
from allotment.webhooks.service import WebhookService

__all__ = ("shard_logs", "webhook_service")


def webhook_service(settings: Settings, *, persistent: bool = True) -> WebhookService:
    """Endpoints and message logs under `<data-dir>/webhooks` (in memory when not
    `persistent`), sent by the protocol sender (requests written straight onto asyncio
    transports; it checks addresses at send, WHK-D31); the journal's notification facts
    rendered by `payloads.outbound_events`. With shards, each shard's message logs are under
    its own `<data-dir>/shards/<k>/webhooks` (SCL-64)."""
    directory = settings.data_dir / "webhooks" if persistent else None
    return WebhookService(
        directory, _system_now,
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


def _system_now() -> datetime:  # until wiring gives the service the server's clock
    return datetime.now(UTC)
