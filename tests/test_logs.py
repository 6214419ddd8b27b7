"""One log format for every line (OPS-M3): text by default, one JSON object per line with
`--log-format json`, and the current request's id on each line written while it is served
(OPS-M4)."""

from __future__ import annotations

import json
import logging
import re
import sys

from allotment.http.observe import REQUEST_ID
from allotment.logs import JsonFormatter, TextFormatter, dict_config


def _record(message: str = "checkpoint %s", *args: object) -> logging.LogRecord:
    record = logging.LogRecord("allotment.storage", logging.INFO, __file__, 1, message, args, None)
    record.created = 1736937000.123  # 2025-01-15T10:30:00.123Z
    return record


def test_text_lines_carry_the_request_id_while_one_is_served() -> None:
    outside = TextFormatter().format(_record("checkpoint %s", "test"))
    assert outside == "2025-01-15T10:30:00.123Z INFO allotment.storage: checkpoint test"
    token = REQUEST_ID.set(b"trace-42")
    try:
        inside = TextFormatter().format(_record())
    finally:
        REQUEST_ID.reset(token)
    assert re.fullmatch(r"\S+Z INFO allotment.storage: checkpoint %s request_id=trace-42", inside)


def test_json_lines_are_one_object_with_the_extra_fields_and_the_traceback() -> None:
    record = _record("GET %s", "/x")
    record.http = {"status": 200}
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    token = REQUEST_ID.set(b"trace-42")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    document = json.loads(line)
    assert document["time"] == "2025-01-15T10:30:00.123Z"
    assert (document["level"], document["logger"], document["message"]) == (
        "INFO",
        "allotment.storage",
        "GET /x",
    )
    assert document["request_id"] == "trace-42"
    assert document["http"] == {"status": 200}
    assert "ValueError: boom" in document["exception"]


def test_library_loggers_write_through_the_same_handler_once() -> None:
    """granian, uvicorn and Litestar bring handlers of their own; ours replace them and they
    do not propagate, so no line is written twice or in a second format."""
    config = dict_config("json")
    for name in ("_granian", "granian.access", "uvicorn.error", "uvicorn.access", "litestar"):
        assert config["loggers"][name]["handlers"] == ["allotment"]
        assert config["loggers"][name]["propagate"] is False
    assert config["root"]["handlers"] == ["allotment"]
    assert config["formatters"]["allotment"]["()"] == "allotment.logs.JsonFormatter"
