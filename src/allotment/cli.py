"""The `allotment` command: `serve` runs the server; `keys create` mints an API key;
`journal repair` repairs a journal segment start-up refused."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from allotment import serving
from allotment.asgi import SETTINGS_ENV, encode_settings
from allotment.config import DEFAULT_CATALOG, Settings
from allotment.domain.catalog import Catalog
from allotment.http.catalog_document import CatalogDocumentInvalid
from allotment.loading import load_catalog
from allotment.persistence import datadir_lock
from allotment.persistence.journal import repair_journal
from allotment.persistence.keys import ALL_SCOPES, KeyStore, new_key
from allotment.persistence.query import QueryFailed, run_query

__all__ = ("main",)


_DURABILITY = {
    "fsync": "fsync: every change is on disk before it is acknowledged",
    "write": "write: changes survive a process crash, not a power cut",
    "none": "NONE: changes are acknowledged before they are written; A CRASH LOSES DATA",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="allotment", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_options(commands.add_parser("serve", help="run the HTTP server"))
    sql = commands.add_parser("sql", help="query the latest analytics snapshot (read-only)")
    sql.add_argument("query", help='e.g. "SELECT * FROM margin_by_customer_feature_model"')
    sql.add_argument("--data-dir", type=Path, default=Path("data"))
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _keys_commands(commands.add_parser("keys", help="manage API keys stored under the data dir"))
    journal = commands.add_parser("journal", help="inspect and repair journal segments")
    journal_commands = journal.add_subparsers(dest="journal_command", required=True)
    repair = journal_commands.add_parser(
        "repair", help="repair the damage start-up reported (stop the server first)"
    )
    repair.add_argument("segment", type=Path, help="the segment file the refusal names")
    repair.add_argument("--offset", type=int, required=True, help="the byte it names")
    return parser


def _serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--data-dir", type=Path, default=Path("data"))
    serve.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="catalog TOML file")
    serve.add_argument("--clock", choices=("system", "manual"), default="system")
    serve.add_argument(
        "--durability",
        choices=("fsync", "write", "none"),
        default="fsync",
        help="when a change is acknowledged: after fsync (default), after write, or at once",
    )
    serve.add_argument(
        "--idempotency-window-days",
        type=_window_days,
        default=Settings().idempotency_window_days,
        metavar="DAYS|forever",
        help="how long event idempotency keys are remembered (at least 35; 'forever' keeps "
        "every key, about 32 bytes each)",
    )
    serve.add_argument(
        "--checkpoint-every",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="state checkpoint period (also after 100,000 journal records)",
    )
    serve.add_argument(
        "--analytics-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="analytics.duckdb rebuild period",
    )
    serve.add_argument(
        "--stripe-success-url", default=None, help="where Checkout returns on payment"
    )
    serve.add_argument("--stripe-cancel-url", default=None, help="where Checkout returns on cancel")
    serve.add_argument("--stripe-api-base", default=None, help=argparse.SUPPRESS)  # tests only
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept this key (every scope); repeatable",
    )
    _connection_options(serve)
    _log_options(serve)


def _log_options(serve: argparse.ArgumentParser) -> None:
    """One format for every log line (docs/observability.md, OPS-M3)."""
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as readable text (default) or one JSON object per line",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="one log line per request, with its request id (off by default: it costs the "
        "check path more than anything else the server logs)",
    )


def _keys_commands(keys: argparse.ArgumentParser) -> None:
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--data-dir", type=Path, default=Path("data"))
    create.add_argument("--environment", choices=("test", "live"), default="test")
    create.add_argument(
        "--scope",
        action="append",
        choices=ALL_SCOPES,
        default=None,
        help="grant this scope; repeatable (default: every scope)",
    )


def _repair_journal(args: argparse.Namespace) -> int:
    segment: Path = args.segment
    try:
        report = repair_journal(segment.parent, segment.name, args.offset)
    except (ValueError, OSError) as error:
        print(f"allotment: {error}", file=sys.stderr)
        return 2
    print(f"allotment: {report.segment}: {report.action}")
    if report.set_aside is not None:
        print(f"  the bytes set aside are in {report.set_aside}")
    return 0


def _connection_options(serve: argparse.ArgumentParser) -> None:
    """Limits that keep idle or slow connections from starving the server (issue 10, item 8)."""
    defaults = Settings()
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


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir.resolve(),
        catalog_path=args.catalog.resolve(),
        clock=args.clock,
        api_keys=args.api_key,
        durability=args.durability,
        snapshot_every_s=args.checkpoint_every,
        analytics_every_s=args.analytics_every,
        stripe_secret_key=os.environ.get("ALLOTMENT_STRIPE_SECRET_KEY") or None,
        stripe_webhook_secret=os.environ.get("ALLOTMENT_STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=args.stripe_api_base,
        **{
            name: value
            for name, value in (
                ("stripe_success_url", args.stripe_success_url),
                ("stripe_cancel_url", args.stripe_cancel_url),
            )
            if value
        },
        connections_max=args.connections_max,
        header_read_timeout_s=args.header_read_timeout,
        body_read_timeout_s=args.body_read_timeout,
        keep_alive=args.keep_alive,
        idempotency_window_days=args.idempotency_window_days,
        log_format=args.log_format,
        access_log=args.access_log,
    )


WINDOW_DAYS_MIN = 35  # a monthly period plus grace: a retry inside it must stay a duplicate


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


def _serve(args: argparse.Namespace) -> int:
    """Claim the data directory, then the port, and only then touch the data (the sandbox
    key) and start granian: a second server stops at the first claim with one line."""
    settings = _settings(args)
    try:
        catalog = load_catalog(settings.catalog_path)
    except (CatalogDocumentInvalid, msgspec.ValidationError, OSError) as error:
        print(f"allotment: cannot load catalog {settings.catalog_path}: {error}", file=sys.stderr)
        return 2
    try:
        lock = datadir_lock.hold(settings.data_dir)
    except datadir_lock.DataDirInUse as error:
        print(f"allotment: {error}", file=sys.stderr)
        return 1
    try:
        listener = serving.listen(settings.host, settings.port)
    except serving.PortUnavailable as error:
        print(f"allotment: {error.message}", file=sys.stderr)
        lock.release()
        return 1
    files = serving.raise_files_limit(settings.connections_max)
    _banner(settings, catalog, files)
    _serve_forever(settings, listener, files.connections)
    lock.release()
    return 0


def _banner(settings: Settings, catalog: Catalog, files: serving.FilesLimit) -> None:
    store = KeyStore(settings.data_dir / "api_keys.json")
    base = f"http://{settings.host}:{settings.port}"
    print(f"allotment: serving the Tanso Client API at {base}/api/v1/client")
    print(f"  catalog     {settings.catalog_path} ({len(catalog.plans)} plans)")
    print(f"  data dir    {settings.data_dir}")
    print(f"  clock       {settings.clock}")
    print(f"  durability  {_DURABILITY[settings.durability]}")
    stripe_state = "on" if settings.stripe_secret_key else "off (set ALLOTMENT_STRIPE_SECRET_KEY)"
    print(f"  stripe      {stripe_state}")
    print(f"  API docs    {base}/schema/swagger  (OpenAPI JSON at {base}/schema/openapi.json)")
    print(f"  connections {_connections_line(settings, files)}")
    if not settings.api_keys and len(store) == 0:
        key = new_key("test")
        store.add(key, persist=True)
        print(f"  sandbox key {key}")
        print("              (shown once; only its hash is stored in the data dir)")
    sys.stdout.flush()


def _connections_line(settings: Settings, files: serving.FilesLimit) -> str:
    line = (
        f"up to {files.connections}; head {settings.header_read_timeout_s:g} s, "
        f"body {settings.body_read_timeout_s:g} s, "
        f"keep-alive {'on' if settings.keep_alive else 'off'}"
    )
    if files.after != files.before:
        line += f"; open-file limit raised {files.before} -> {files.after}"
    if files.connections < settings.connections_max:
        line += f" (LOWERED from {settings.connections_max}: raise the hard open-file limit)"
    return line


def _serve_forever(settings: Settings, listener: socket.socket, connections: int) -> None:
    os.environ[SETTINGS_ENV] = encode_settings(settings)
    # The worker that builds the system must share this process's data-directory lock: a
    # forked child inherits the locked descriptor (and datadir_lock's registry naming it), a
    # spawned one would not. Python 3.11 forks by default on Linux; 3.14 does not, so say it.
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)
    serving.server(settings, listener, connections).serve()


def _create_key(args: argparse.Namespace) -> int:
    store = KeyStore(args.data_dir / "api_keys.json")
    key = new_key(args.environment)
    scopes = tuple(args.scope) if args.scope else ALL_SCOPES
    store.add(key, scopes, persist=True)
    print(key)
    return 0


def _sql(args: argparse.Namespace) -> int:
    path = args.data_dir / "analytics.duckdb"
    if not path.exists():
        print(
            f"allotment: no analytics snapshot at {path}; "
            f"is the server running with --data-dir {args.data_dir}?",
            file=sys.stderr,
        )
        return 2
    try:
        print(run_query(path, args.query, args.format))
    except QueryFailed as error:
        print(f"allotment: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "sql":
        return _sql(args)
    if args.command == "journal":
        return _repair_journal(args)
    return _create_key(args)


if __name__ == "__main__":
    raise SystemExit(main())
