"""Settings: every limit and path of a server lives here, with its default."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import msgspec

__all__ = ("DEFAULT_CATALOG", "DEFAULT_MODEL_PRICES", "Settings")

# Package data (OPS-P1): found through the import system, so a wheel, a container or a zip
# import has them wherever it is installed; nothing is looked up relative to a source tree.
_DEFAULTS = files("allotment") / "defaults"
DEFAULT_CATALOG: Traversable = _DEFAULTS / "demo_catalog.toml"
DEFAULT_MODEL_PRICES: Traversable = _DEFAULTS / "model_prices.toml"


class Settings(msgspec.Struct, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    catalog_path: Path | None = None  # None: the demo catalog shipped in the package
    model_prices_path: Path | None = None  # None: the price table shipped in the package
    clock: Literal["system", "manual"] = "system"
    api_keys: list[str] = msgspec.field(default_factory=list)  # given on the command line
    account_mode: Literal["platform", "observe"] = "platform"  # AUTH-6 (b)
    payment_terms_days: int = 0  # INV-5
    # CN-20: the prefixes of an environment's gap-free numbers (INV-000001, CN-000001)
    invoice_number_prefix: str = "INV-"
    credit_note_number_prefix: str = "CN-"
    request_body_size_max: int = 1_048_576  # bytes; larger bodies get 413
    event_meta_size_max: int = 16_384  # EVT-6: serialised `meta` bytes
    batch_size_max: int = 1_000  # events per POST /events/batch
    audit_buffer_size_max: int = 100_000  # audit records awaiting the analytics drain
    audit_key_window_size_max: int = 1_000_000  # ENT-32 audit de-duplication keys remembered
    timer_interval_s: float = 1.0  # longest sleep of the sweep that fires due transitions
    durability: Literal["fsync", "write", "none"] = "fsync"  # when a change is acknowledged
    # Event keys remembered for this many days (at least 35: a period plus grace); None keeps
    # them forever (EVT-38) at about 32 bytes a key.
    idempotency_window_days: int | None = 35
    journal_pending_bytes_max: int = 64 * 1024 * 1024  # bytes awaiting the disk; then 503
    # Customers kept decoded per shard; the others wait in their compact stored form (about
    # 1 KB) and are decoded on first touch (tens of us). A working set larger than this decodes
    # and re-encodes on every touch (the HTTP bench's 10k customers spread over a warm set of
    # 4,096 halved ingest), so the default holds the benchmarks' 100k customers warm.
    # docs/internals.md, "Compact state".
    warm_customers_max: int = 131_072
    rebuild_every_s: float = 5.0  # how often a failed shard tries to rebuild from disk
    recovery_progress_every_s: float = 5.0  # a recovery longer than this reports progress
    disk_free_min_bytes: int = 1 << 30  # /health/ready fails below this much free space
    snapshot_every_s: float = 300.0  # state checkpoint period
    snapshot_every_records: int = 100_000  # ... or after this many journal records
    snapshots_kept: int = 2
    analytics_every_s: float = 60.0  # analytics database rebuild period
    segment_size_max: int = 64 * 1024 * 1024  # bytes per journal segment
    # Customer shards of each environment (docs/scale-out.md): above 1, each under
    # `<data-dir>/shards/<k>/`, their number fixed when the directory is created (SCL-20).
    shards: int = 1
    # Serving the shards as Ray actors (docs/scale-out.md, SCL-39): `serve --shards N` above 1
    # (or `--workers` above 1, or a `--ray-address`) serves from `workers` granian processes,
    # each a Ray driver holding handles to every shard actor. `ray_address` None starts a
    # local Ray cluster for the server's lifetime; "auto" or an address joins one. Actors are
    # named in `ray_namespace`, so a later server re-attaches to them.
    workers: int = 1
    ray_address: str | None = None
    ray_namespace: str = "allotment"
    # Connections (issue 10, item 8; docs/internals.md "One server per data directory and
    # port; connections"). Sized so 10,000 idle or slow connections leave room for clients.
    connections_max: int = 16_384  # open connections; more wait in the listen backlog
    header_read_timeout_s: float = 15.0  # request head, and idle between kept-alive requests
    body_read_timeout_s: float = 30.0  # the whole request body, from the end of its head
    keep_alive: bool = True  # reuse a connection for further requests
    # Stripe (STR-*): off unless a secret key is set. Secrets come from the environment
    # (ALLOTMENT_STRIPE_SECRET_KEY, ALLOTMENT_STRIPE_WEBHOOK_SECRET), never from argv.
    # Outbound webhooks (issue 15, docs/webhooks.md).
    allow_private_webhooks: bool = False  # endpoints on private/loopback addresses (WHK-D31)
    webhook_backlog_max: int = 10_000  # undelivered messages per endpoint (WHK-D27)
    webhook_retention_days: int = 7  # delivered/failed messages and the feed (WHK-D42)
    # Delivery from a process of its own (WHK-D50), started once webhooks are used: on a second
    # core, sending no longer takes ingest's (bench/README.md, "Delivery in a worker process").
    # Only the served app reads it (wiring.build_app); `--no-webhook-worker` keeps delivery in
    # the server's process.
    webhook_worker: bool = True
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_success_url: str = (
        "http://localhost:3000/billing/success?session_id={CHECKOUT_SESSION_ID}"
    )
    stripe_cancel_url: str = "http://localhost:3000/billing/cancelled"
    stripe_api_base: str | None = None  # tests point the SDK at a local double; production: unset
    stripe_timeout_s: float = 10.0
    # Logs (docs/observability.md): one format for every line, ours and the libraries'.
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False  # one line per request; off: it would cost the check path most
    # The seller on invoice and credit-note PDFs (docs/credit-notes.md, CN-D1); the address
    # is one line per line of text.
    seller_name: str = "allotment"
    seller_address: str = ""

    @property
    def on_ray(self) -> bool:
        """Whether `serve` runs the shards as Ray actors (SCL-39): several shards or workers
        need processes that share no memory, and a Ray address asks for it."""
        return self.shards > 1 or self.workers > 1 or self.ray_address is not None
