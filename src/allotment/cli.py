"""The `allotment` command: `serve` runs the server; `keys create|list|revoke` manage API keys
(applied to a running server at once); `journal repair` repairs a journal segment start-up
refused; `reshard` moves customers onto a new number of shards."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import msgspec

from allotment import __version__, scale_out, serving
from allotment.asgi import SETTINGS_ENV, encode_settings
from allotment.config import DEFAULT_CATALOG, DEFAULT_MODEL_PRICES, Settings
from allotment.console.sessions import forget_all
from allotment.domain.catalog import Catalog
from allotment.keys_cli import run_keys_command
from allotment.loading import source_name
from allotment.persistence.journal import repair_journal
from allotment.persistence.keys import ALL_SCOPES, KeyStore
from allotment.persistence.query import QueryFailed, run_query
from allotment.reshard import ReshardRefused, reshard
from allotment.serve_options import EnvInvalid, apply_environment, render_config, serve_options
from allotment.serve_options import settings_from as _settings
from allotment.startup import StartRefused, claim

__all__ = ("main",)


_DURABILITY = {
    "fsync": "fsync: every change is on disk before it is acknowledged",
    "write": "write: changes survive a process crash, not a power cut",
    "none": "NONE: changes are acknowledged before they are written; A CRASH LOSES DATA",
}


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error is one line and exit status 2 (OPS-P3): the usage
    block argparse prints first would push the error itself off a narrow log view."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command line; the environment supplies the `serve` defaults (ALLOTMENT_<FLAG>).

    Raises:
        EnvInvalid: an ALLOTMENT_<FLAG> variable holds a value its flag refuses.
    """
    parser = _Parser(prog="allotment", description=__doc__)
    parser.add_argument("--version", action="version", version=f"allotment {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve_options(serve)
    apply_environment(serve, os.environ if environ is None else environ)
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
    _reshard_command(commands)
    return parser


def _reshard_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    reshard = commands.add_parser(
        "reshard", help="move every customer onto a new number of shards (stop the server first)"
    )
    reshard.add_argument("--data-dir", type=Path, default=Path("data"))
    reshard.add_argument("--shards", type=int, required=True, help="the new number of shards")
    reshard.add_argument("--catalog", type=Path, default=None, help="the catalog the server uses")
    reshard.add_argument("--model-prices", type=Path, default=None, help="its model prices")


def _reshard(args: argparse.Namespace) -> int:
    """SCL-23..SCL-26: one line per refusal, non-zero, nothing changed."""
    settings = Settings(
        data_dir=args.data_dir,
        catalog_path=args.catalog.resolve() if args.catalog else None,
        model_prices_path=args.model_prices.resolve() if args.model_prices else None,
    )
    try:
        report = reshard(settings, args.shards)
    except ReshardRefused as refused:
        print(f"allotment: reshard refused: {refused}", file=sys.stderr)
        return 2
    print(f"allotment: {args.data_dir} resharded from {report.before} to {report.after} shards")
    for environment, counts in sorted(report.customers.items()):
        print(f"  {environment}: customers per shard {counts}")
    print(f"  the old shards are kept in {report.backup}")
    return 0


def _keys_commands(keys: argparse.ArgumentParser) -> None:
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="what the key is for, e.g. default, ci")
    create.add_argument(
        "--scopes",
        default="all",
        metavar="all|SCOPE,...",
        help=f"all (the default), or any of {', '.join(ALL_SCOPES)} separated by commas",
    )
    create.add_argument("--environment", choices=("test", "live"), default="test")
    listing = keys_commands.add_parser(
        "list", help="show the keys: id (prefix), name, scopes, created, last used; never a key"
    )
    revoke = keys_commands.add_parser(
        "revoke", help="revoke a key; a running server refuses it from its next request"
    )
    revoke.add_argument("key", metavar="ID|NAME", help="the id `keys list` shows, or the name")
    for command in (create, listing, revoke):
        command.add_argument("--data-dir", type=Path, default=Path("data"))


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


def _serve(args: argparse.Namespace) -> int:
    """Claim the files, the data directory and the port, and only then touch the data (the
    sandbox key) and start granian: each refusal is one line and a non-zero status (OPS-P3)."""
    settings = _settings(args)
    if args.print_config:
        print(render_config(settings))
        return 0
    try:
        claimed = claim(settings)
    except StartRefused as refused:
        print(f"allotment: {refused}", file=sys.stderr)
        return refused.status
    files = serving.raise_files_limit(settings.connections_max)
    if settings.on_ray and settings.clock == "manual" and settings.workers > 1:
        claimed.lock.release()
        print("allotment: --clock manual needs --workers 1: each worker would keep its own "
              "clock", file=sys.stderr)  # fmt: skip
        return 2
    _banner(settings, claimed.catalog, files)
    forget_all(settings.data_dir)  # CON-81: a restart signs every console session out
    status = 0
    if settings.on_ray:
        status = _serve_on_ray(settings, claimed.listener, files.connections)
    else:
        _serve_forever(settings, claimed.listener, files.connections)
    claimed.lock.release()
    return status


def _serve_on_ray(settings: Settings, listener: socket.socket, connections: int) -> int:
    """SCL-39: the keeper starts or re-attaches the shard actors; the workers join its cluster."""
    try:
        keeper = scale_out.start_keeper(settings)
    except scale_out.KeeperFailed as failed:
        print(f"allotment: {failed}", file=sys.stderr)
        return 1
    print(f"  shards      {settings.shards} Ray actors on {keeper.address}, "
          f"{settings.workers} front-door worker(s)", flush=True)  # fmt: skip
    os.environ[scale_out.AUTH_MODE_ENV] = keeper.auth_mode  # the forked workers join with it
    try:
        served = msgspec.structs.replace(settings, ray_address=keeper.address)
        _serve_forever(served, listener, connections, scale_out.FACTORY)
    finally:
        keeper.stop()
    return 0


def _banner(settings: Settings, catalog: Catalog, files: serving.FilesLimit) -> None:
    store = KeyStore(settings.data_dir / "api_keys.json")
    base = f"http://{settings.host}:{settings.port}"
    print(f"allotment {__version__}: starting the Tanso Client API at {base}/api/v1/client")
    print(f"  catalog     {source_name(settings.catalog_path, DEFAULT_CATALOG)} "
          f"({len(catalog.plans)} plans)")  # fmt: skip
    print(f"  prices      {source_name(settings.model_prices_path, DEFAULT_MODEL_PRICES)}")
    print(f"  data dir    {settings.data_dir}")
    print(f"  clock       {settings.clock}")
    print(f"  durability  {_DURABILITY[settings.durability]}")
    stripe_state = "on" if settings.stripe_secret_key else "off (set ALLOTMENT_STRIPE_SECRET_KEY)"
    print(f"  stripe      {stripe_state}")
    print(f"  API docs    {base}/schema/swagger  (OpenAPI JSON at {base}/schema/openapi.json)")
    print(f"  connections {_connections_line(settings, files)}")
    if not settings.api_keys and not store.stored():
        key, _ = store.create("default", ALL_SCOPES, "test")
        print(f"  sandbox key {key}")
        print("              (shown once; only its hash is stored. Lost it? Run")
        print("               allotment keys create --name default --scopes all \\")
        print(f"                 --data-dir {settings.data_dir})")
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


def _serve_forever(
    settings: Settings, listener: socket.socket, connections: int,
    factory: str = serving.APP_FACTORY,
) -> None:  # fmt: skip
    os.environ[SETTINGS_ENV] = encode_settings(settings)
    # The worker that builds the system must share this process's data-directory lock: a
    # forked child inherits the locked descriptor (and datadir_lock's registry naming it), a
    # spawned one would not. Python 3.11 forks by default on Linux; 3.14 does not, so say it.
    if multiprocessing.get_start_method(allow_none=True) != "fork":
        multiprocessing.set_start_method("fork", force=True)
    serving.server(settings, listener, connections, factory).serve()


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
    try:
        parser = _parser()
    except EnvInvalid as invalid:
        print(f"allotment: {invalid}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "sql":
        return _sql(args)
    if args.command == "reshard":
        return _reshard(args)
    if args.command == "journal":
        return _repair_journal(args)
    return run_keys_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
