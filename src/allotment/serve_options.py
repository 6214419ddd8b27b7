"""The `serve` flags, the ALLOTMENT_<FLAG> environment variables behind them, and the
effective configuration `serve --print-config` shows (docs/deploy.md, OPS-P6 to OPS-P8).

Every flag of `allotment serve` is also read from the environment variable named after its
long option (`--data-dir` is `ALLOTMENT_DATA_DIR`). The variable becomes the flag's default, so
a flag given on the command line always wins, and a bad value is refused with one line naming
the variable. Secrets (the Stripe keys) come only from the environment, never from argv, where
`ps` would show them.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from allotment.config import Settings

__all__ = (
    "ENV_PREFIX",
    "EnvInvalid",
    "apply_environment",
    "env_name",
    "render_config",
    "serve_options",
    "settings_from",
)

ENV_PREFIX = "ALLOTMENT_"
_NOT_FROM_ENV = frozenset({"help", "print_config"})  # actions, not configuration
_KINDS: dict[object, str] = {int: "a whole number", float: "a number"}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SECRET_ENV = {  # settings that only the environment sets
    "stripe_secret_key": "ALLOTMENT_STRIPE_SECRET_KEY",
    "stripe_webhook_secret": "ALLOTMENT_STRIPE_WEBHOOK_SECRET",
}
WINDOW_DAYS_MIN = 35  # a monthly period plus grace: a retry inside it must stay a duplicate


class EnvInvalid(ValueError):
    """An ALLOTMENT_<FLAG> variable holds a value its flag would refuse; the message names the
    variable and says what is expected."""


class _Replace(argparse.Action):
    """A repeatable flag whose values replace its default (from the environment) instead of
    adding to it, as `append` would: flags win over environment variables (OPS-P6)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = f"_{self.dest}_given"
        items = (
            list(getattr(namespace, self.dest) or []) if getattr(namespace, given, False) else []
        )
        items.append(values)
        setattr(namespace, self.dest, items)
        setattr(namespace, given, True)


def _window_days(text: str) -> int | None:
    if text == "forever":
        return None
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of days or 'forever', not {text!r}"
        ) from None
    if days < WINDOW_DAYS_MIN:
        raise argparse.ArgumentTypeError(f"at least {WINDOW_DAYS_MIN} days, not {days}")
    return days


def serve_options(serve: argparse.ArgumentParser) -> None:
    """Declare every flag of `allotment serve` (each also an ALLOTMENT_<FLAG> variable)."""
    defaults = Settings()
    add = serve.add_argument
    add("--host", default=defaults.host)
    add("--port", type=int, default=defaults.port)
    add("--data-dir", type=Path, default=defaults.data_dir)
    add("--catalog", type=Path, default=None, help="catalog TOML file (default: the demo catalog)")
    add(
        "--model-prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="model price table TOML file (default: the table shipped with allotment)",
    )
    add("--clock", choices=("system", "manual"), default=defaults.clock)
    _storage_options(serve, defaults)
    _access_options(serve, defaults)
    _connection_options(serve, defaults)
    _document_options(serve, defaults)
    _log_options(serve, defaults)
    _numbering_options(serve, defaults)
    _scale_options(serve, defaults)
    add(
        "--print-config",
        action="store_true",
        help="print the effective configuration (secrets masked) and exit",
    )


def _storage_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """How changes reach the disk, and how often the upkeep and readiness look at it."""
    add = serve.add_argument
    add(
        "--durability",
        choices=("fsync", "write", "none"),
        default=defaults.durability,
        help="when a change is acknowledged: after fsync (default), after write, or at once",
    )
    add(
        "--idempotency-window-days",
        type=_window_days,
        metavar="DAYS|forever",
        default=defaults.idempotency_window_days,
        help="how long event idempotency keys are remembered (at least 35; 'forever' keeps "
        "every key, about 32 bytes each)",
    )
    add(
        "--warm-customers",
        type=_positive,
        default=defaults.warm_customers_max,
        metavar="N",
        help="customers kept decoded per shard; the others wait in their compact stored form "
        "(about 1 KB) and are decoded on first touch",
    )
    add(
        "--checkpoint-every",
        type=float,
        default=defaults.snapshot_every_s,
        metavar="SECONDS",
        help="state checkpoint period (also after 100,000 journal records)",
    )
    add(
        "--analytics-every",
        type=float,
        default=defaults.analytics_every_s,
        metavar="SECONDS",
        help="analytics.duckdb rebuild period",
    )
    add(
        "--recovery-progress-every",
        type=float,
        metavar="SECONDS",
        default=defaults.recovery_progress_every_s,
        help="a recovery that takes longer reports its progress this often",
    )
    add(
        "--disk-free-min-mb",
        type=int,
        metavar="MB",
        default=defaults.disk_free_min_bytes >> 20,
        help="/health/ready fails when the data directory's disk has less free space",
    )


def _access_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Stripe Checkout's return pages, and keys given on the command line."""
    add = serve.add_argument
    add(
        "--stripe-success-url",
        default=defaults.stripe_success_url,
        help="where Checkout returns on payment",
    )
    add(
        "--stripe-cancel-url",
        default=defaults.stripe_cancel_url,
        help="where Checkout returns on cancel",
    )
    add("--stripe-api-base", default=None, help=argparse.SUPPRESS)  # tests only
    add(
        "--api-key",
        action=_Replace,
        default=[],
        metavar="KEY",
        help="accept this key (every scope); repeatable; ALLOTMENT_API_KEY takes a comma list",
    )
    add(
        "--allow-private-webhooks",
        action=argparse.BooleanOptionalAction,
        default=defaults.allow_private_webhooks,
        help="let webhook endpoints be private or loopback addresses (tests, one private net)",
    )
    add(
        "--webhook-backlog-max",
        type=int,
        default=defaults.webhook_backlog_max,
        metavar="N",
        help="undelivered messages kept per webhook endpoint; past it new ones fail at once",
    )
    add(
        "--webhook-retention-days",
        type=int,
        default=defaults.webhook_retention_days,
        metavar="DAYS",
        help="days delivered and failed webhook messages, and the event feed, are kept",
    )
    add(
        "--webhook-worker",
        action=argparse.BooleanOptionalAction,
        default=defaults.webhook_worker,
        help="send webhooks from a process of their own, on another core (on by default)",
    )


def _prefix(text: str) -> str:
    """A number prefix is printable, without spaces, and short enough for any document."""
    if not text.isprintable() or " " in text or len(text) > 16:
        raise argparse.ArgumentTypeError("up to 16 printable characters, no spaces")
    return text


def _numbering_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """The prefixes of invoice and credit-note numbers (docs/credit-notes.md, CN-23)."""
    add = serve.add_argument
    add(
        "--invoice-number-prefix",
        type=_prefix,
        default=defaults.invoice_number_prefix,
        metavar="PREFIX",
        help="invoice numbers are PREFIX and six digits (INV-000001); gap-free per environment",
    )
    add(
        "--credit-note-number-prefix",
        type=_prefix,
        default=defaults.credit_note_number_prefix,
        metavar="PREFIX",
        help="credit note numbers are PREFIX and six digits (CN-000001)",
    )


def _log_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """One format for every log line (docs/observability.md, OPS-M3)."""
    add = serve.add_argument
    add(
        "--log-format",
        choices=("text", "json"),
        default=defaults.log_format,
        help="log lines as readable text (default) or one JSON object per line (OPS-M3)",
    )
    add(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=defaults.access_log,
        help="one log line per request, with its request id (off by default: it costs the "
        "check path more than anything else the server logs)",
    )


def _connection_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Limits that keep idle or slow connections from starving the server (issue 10, item 8)."""
    serve.add_argument(
        "--connections-max",
        type=int,
        default=defaults.connections_max,
        metavar="N",
        help="open connections served at once; more wait in the listen backlog "
        "(the open-file limit is raised to fit)",
    )
    serve.add_argument(
        "--header-read-timeout",
        type=float,
        default=defaults.header_read_timeout_s,
        metavar="SECONDS",
        help="close a connection whose request head has not arrived by then; the same timer "
        "closes a kept-alive connection idle between requests",
    )
    serve.add_argument(
        "--body-read-timeout",
        type=float,
        default=defaults.body_read_timeout_s,
        metavar="SECONDS",
        help="answer 408 and close when a request body has not fully arrived by then",
    )
    serve.add_argument(
        "--keep-alive",
        action=argparse.BooleanOptionalAction,
        default=defaults.keep_alive,
        help="reuse connections for further requests (idle ones close after --header-read-timeout)",
    )


def _document_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Who invoice and credit-note PDFs name as the seller (docs/credit-notes.md, CN-D1)."""
    serve.add_argument(
        "--seller-name",
        default=defaults.seller_name,
        metavar="NAME",
        help="the seller's name on invoice and credit-note PDFs",
    )
    serve.add_argument(
        "--seller-address",
        default=defaults.seller_address,
        metavar="TEXT",
        help="the seller's address on the PDFs, one line per line of TEXT",
    )


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {number}")
    return number


def _scale_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Shards as Ray actors and several front-door workers (docs/scale-out.md, SCL-39)."""
    add = serve.add_argument
    add(
        "--shards",
        type=_positive,
        default=defaults.shards,
        metavar="N",
        help="customer shards; above 1 each is a Ray actor with its own journal under "
        "<data-dir>/shards/<k>/ (N is fixed when the directory is created)",
    )
    add(
        "--workers",
        type=_positive,
        default=defaults.workers,
        metavar="M",
        help="front-door processes serving HTTP; above 1 the shards are Ray actors",
    )
    add(
        "--ray-address",
        default=None,
        metavar="auto|ADDRESS",
        help="join this Ray cluster ('auto': the one this machine runs); by default a local "
        "cluster is started and ends with the server",
    )
    add(
        "--ray-namespace",
        default=defaults.ray_namespace,
        metavar="NAME",
        help="where the shard actors are named: a later server in it re-attaches to them",
    )


def env_name(action: argparse.Action) -> str | None:
    """ALLOTMENT_<FLAG> for a flag's long option; None for what is not configuration."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    if not longs or action.dest in _NOT_FROM_ENV:
        return None
    return ENV_PREFIX + longs[0][2:].upper().replace("-", "_")


def _convert(action: argparse.Action, raw: str) -> Any:
    if isinstance(action, argparse.BooleanOptionalAction):
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ValueError(f"expected one of {', '.join(sorted(_TRUE | _FALSE))}")
    if isinstance(action, _Replace):
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        value = action.type(raw) if callable(action.type) else raw
    except ValueError:  # int("abc") says "invalid literal for int() with base 10"
        raise ValueError(f"expected {_KINDS.get(action.type, 'a valid value')}") from None
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value


def apply_environment(serve: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Make each ALLOTMENT_<FLAG> variable its flag's default, so the command line wins.

    Raises:
        EnvInvalid: a variable's value is one its flag would refuse.
    """
    for action in serve._actions:  # argparse has no public list of a parser's actions
        name = env_name(action)
        if name is None or name not in environ:
            continue
        raw = environ[name]
        try:
            action.default = _convert(action, raw)
        except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
            raise EnvInvalid(f"{name}={raw!r} is invalid: {error}") from None


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings the parsed `serve` flags (and the environment behind them) describe."""
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        catalog_path=args.catalog.resolve() if args.catalog else None,
        model_prices_path=args.model_prices.resolve() if args.model_prices else None,
        clock=args.clock,
        api_keys=list(args.api_key),
        durability=args.durability,
        snapshot_every_s=args.checkpoint_every,
        warm_customers_max=args.warm_customers,
        analytics_every_s=args.analytics_every,
        recovery_progress_every_s=args.recovery_progress_every,
        disk_free_min_bytes=args.disk_free_min_mb << 20,
        stripe_secret_key=environ.get(_SECRET_ENV["stripe_secret_key"]) or None,
        stripe_webhook_secret=environ.get(_SECRET_ENV["stripe_webhook_secret"]) or None,
        stripe_api_base=args.stripe_api_base,
        stripe_success_url=args.stripe_success_url,
        stripe_cancel_url=args.stripe_cancel_url,
        connections_max=args.connections_max,
        header_read_timeout_s=args.header_read_timeout,
        body_read_timeout_s=args.body_read_timeout,
        keep_alive=args.keep_alive,
        idempotency_window_days=args.idempotency_window_days,
        log_format=args.log_format,
        access_log=args.access_log,
        allow_private_webhooks=args.allow_private_webhooks,
        webhook_backlog_max=args.webhook_backlog_max,
        webhook_retention_days=args.webhook_retention_days,
        webhook_worker=args.webhook_worker,
        invoice_number_prefix=args.invoice_number_prefix,
        credit_note_number_prefix=args.credit_note_number_prefix,
        seller_name=args.seller_name,
        seller_address=args.seller_address,
        shards=args.shards,
        workers=args.workers,
        ray_address=args.ray_address,
        ray_namespace=args.ray_namespace,
    )


def _mask(name: str, value: Any) -> Any:
    """OPS-P7: a secret shows that it is set and, for API keys, its environment prefix."""
    if name in _SECRET_ENV and value is not None:
        return "********"
    if name == "api_keys":
        return [key[: key.find("_", 3) + 1] + "********" for key in value]
    return value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def render_config(settings: Settings) -> str:
    """Every setting in effect, one `name = value` line each (TOML), secrets masked; a
    setting that is unset is shown as a comment saying what applies instead."""
    lines = ["# allotment serve: effective configuration (secrets masked)"]
    for name in settings.__struct_fields__:
        value = _mask(name, getattr(settings, name))
        if value is None:
            lines.append(f"# {name} is not set{_UNSET.get(name, '')}")
        else:
            lines.append(f"{name} = {_toml(value)}")
    return "\n".join(lines)


_UNSET = {
    "catalog_path": ": the demo catalog built into allotment",
    "model_prices_path": ": the model price table built into allotment",
    "idempotency_window_days": ": event keys are kept forever",
    "stripe_secret_key": ": Stripe checkout is off (set ALLOTMENT_STRIPE_SECRET_KEY)",
    "stripe_webhook_secret": ": set ALLOTMENT_STRIPE_WEBHOOK_SECRET to verify webhooks",
    "stripe_api_base": ": Stripe's own API",
}
