"""The ASGI factory granian workers import: settings arrive as JSON in ALLOTMENT_SETTINGS."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from allotment import logs
from allotment.config import Settings
from allotment.http.body_deadline import BodyDeadline
from allotment.http.fast_path import FastPath
from allotment.loading import LoadFailed
from allotment.persistence.datadir_lock import DataDirInUse
from allotment.persistence.errors import JournalCorrupt
from allotment.runtime import heap
from allotment.wiring import build_app

__all__ = (
    "SETTINGS_ENV",
    "app_from_environment",
    "decode_settings",
    "encode_settings",
    "served_app",
)

SETTINGS_ENV = "ALLOTMENT_SETTINGS"


def _enc(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(type(value))


def _dec(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(type_)


def encode_settings(settings: Settings) -> str:
    return msgspec.json.encode(settings, enc_hook=_enc).decode()


def decode_settings(raw: str) -> Settings:
    return msgspec.json.decode(raw, type=Settings, dec_hook=_dec)


def _listening(settings: Settings) -> Callable[[], None]:
    def announce() -> None:
        # OPS-P4: printed by the worker once it serves, never before recovery is done
        print(f"allotment: listening at http://{settings.host}:{settings.port} (ready)")
        sys.stdout.flush()

    return announce


def app_from_environment() -> BodyDeadline:
    """The served app of one process: the system recovered from the data directory."""
    return served_app(lambda settings, on_started: build_app(settings, on_started=on_started))


def served_app(build: Callable[[Settings, Callable[[], None]], FastPath]) -> BodyDeadline:
    """The served app `build` makes from the settings in ALLOTMENT_SETTINGS: granian bounds
    connections and request heads, this bounds bodies (the Ray front door's workers build
    theirs with `scale_out.app_from_environment`).

    A start that fails here (a journal that refuses recovery, a file that went away since
    `serve` checked it, a Ray cluster that cannot be reached) is one line on stderr and the
    end of the worker, which ends the server with a non-zero status."""
    raw = os.environ.get(SETTINGS_ENV)
    settings = decode_settings(raw) if raw else Settings()
    logs.configure(settings.log_format)  # before recovery, whose progress is logged
    heap.serving()
    try:
        app = build(settings, _listening(settings))
    except (JournalCorrupt, LoadFailed, DataDirInUse, OSError) as error:
        print(f"allotment: {error}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)  # granian would log a traceback for an exception; the line says it all
    return BodyDeadline(app, settings.body_read_timeout_s)
