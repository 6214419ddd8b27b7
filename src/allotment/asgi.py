"""The ASGI factory granian workers import: settings arrive as JSON in ALLOTMENT_SETTINGS."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from allotment import logs
from allotment.config import Settings
from allotment.http.body_deadline import BodyDeadline
from allotment.wiring import build_app

__all__ = ("SETTINGS_ENV", "app_from_environment", "decode_settings", "encode_settings")

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


def app_from_environment() -> BodyDeadline:
    """The served app: granian bounds connections and request heads, this bounds bodies."""
    raw = os.environ.get(SETTINGS_ENV)
    settings = decode_settings(raw) if raw else Settings()
    logs.configure(settings.log_format)  # before recovery, whose progress is logged
    return BodyDeadline(build_app(settings), settings.body_read_timeout_s)
