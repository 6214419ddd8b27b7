"""One log format for every line the server writes: ours, granian's, Litestar's, uvicorn's.

`--log-format text` (the default) reads well in a terminal:

    2025-01-15T10:30:00.123Z INFO allotment.storage: checkpoint {...} request_id=4f1c...

`--log-format json` writes one JSON object per line for a log collector:

    {"time":"2025-01-15T10:30:00.123Z","level":"INFO","logger":"allotment.storage",
     "message":"checkpoint {...}","request_id":"4f1c..."}

Every line written while a request is served carries that request's id (`http.observe`), the
one its response echoes in `X-Request-Id` (OPS-M3). Lines go to standard error; standard output
keeps the start-up banner (the key shown once, the URLs).

`dict_config` is handed to granian (it applies it in the serving process, for its own lines)
and applied again in the worker that builds the app (`asgi.app_from_environment`).
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from allotment.http.observe import REQUEST_ID

__all__ = ("JsonFormatter", "LogFormat", "TextFormatter", "configure", "dict_config")

LogFormat = Literal["text", "json"]

# Loggers that bring their own handlers or formats: routed to ours and not propagated, so each
# line is written once, in our format.
_LIBRARY_LOGGERS = ("_granian", "granian.access", "uvicorn", "uvicorn.error", "uvicorn.access",
                    "litestar")  # fmt: skip

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _request_id() -> str | None:
    request_id = REQUEST_ID.get()
    return request_id.decode("latin-1") if request_id is not None else None


class TextFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <logger>: <message> request_id=<id>`, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        request_id = _request_id()
        if request_id is not None:
            line += f" request_id={request_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id when serving a
    request, the fields a caller passed with `extra=`, and `exception` (the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id()
        if request_id is not None:
            document["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _STANDARD and name not in document:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(document, enc_hook=str).decode()


def dict_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one handler on standard error with the
    formatter of `log_format`, on the root logger and on every library logger."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    handler = {"class": "logging.StreamHandler", "formatter": "allotment",
               "stream": "ext://sys.stderr"}  # fmt: skip
    library = {"handlers": ["allotment"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"allotment": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"allotment": handler},
        "root": {"handlers": ["allotment"], "level": level},
        "loggers": {name: dict(library) for name in _LIBRARY_LOGGERS},
    }


def configure(log_format: LogFormat) -> None:
    """Apply `dict_config(log_format)` to this process."""
    logging.config.dictConfig(dict_config(log_format))
