"""How a failed answer becomes a typed exception (RSV-46), and that the client stays an edge
that loads none of the server (the import-linter contract checks the imports; this checks
what importing it loads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from allotment.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    api_error_of,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, BadRequest), (409, Conflict), (429, RateLimited), (503, ServiceUnavailable),
     (502, ServerError), (500, ServerError), (413, ApiError)],
)  # fmt: skip
def test_each_status_has_its_class(status: int, kind: type[ApiError]) -> None:
    error = api_error_of(status, b'{"success":false,"error":{"message":"No."}}', None)
    assert type(error) is kind and error.status == status and error.message == "No."


def test_the_field_comes_from_the_body_else_from_the_message() -> None:
    named = api_error_of(400, b'{"success":false,"error":{"message":"Invalid field '
                         b"'items[2].units': must be positive.\"}}", None)  # fmt: skip
    assert named.field == "items[2].units" and named.code is None
    explicit = b'{"success":false,"error":{"message":"m","field":"units","code":"UNITS"}}'
    error = api_error_of(400, explicit, None)
    assert (error.field, error.code) == ("units", "UNITS")
    assert (
        api_error_of(404, b'{"success":false,"error":{"message":"Not found."}}', None).field is None
    )


def test_retry_after_and_a_body_that_is_not_the_envelope() -> None:
    error = api_error_of(503, b"<html>bad gateway</html>", "7")
    assert error.retry_after_s == 7 and error.message == "<html>bad gateway</html>"
    assert api_error_of(503, b"", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_s is None
    assert api_error_of(502, b"", None).message == "HTTP 502"


def test_importing_the_client_loads_none_of_the_server() -> None:
    script = ("import sys, allotment.client; "
              "print(sorted(m for m in ('litestar', 'duckdb', 'pyarrow', 'granian', "
              "'allotment.domain', 'allotment.runtime', 'allotment.http') if m in sys.modules))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": ":".join(sys.path)})  # fmt: skip
    assert loaded.stdout.strip() == "[]"
