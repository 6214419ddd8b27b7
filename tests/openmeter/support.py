"""What the OpenMeter tests share: a real server driven by the official `openmeter` client
(unchanged, Bearer auth with an allotment key), raw httpx for the Tanso side, and helpers
that read a refused request's problem+json."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from corehttp.exceptions import HttpResponseError

from openmeter import Client
from tests.reliability.server import KEY, Server

__all__ = ("A", "C", "Problem", "om_client", "refused", "running_server", "tanso")

C = "/api/v1/client"
A = "/api/v1/admin"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    server = Server(data_dir)
    try:
        yield server
    finally:
        server.kill()


def om_client(server: Server) -> Client:
    return Client(endpoint=server.url, token=KEY)


def tanso(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HEADERS, timeout=30)


class Problem:
    """A refused request as the client saw it."""

    def __init__(self, error: HttpResponseError) -> None:
        response: Any = error.response  # corehttp's HttpResponse: headers and json()
        assert response is not None
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.body: dict[str, Any] = response.json()

    @property
    def fields(self) -> list[str]:
        errors = self.body.get("extensions", {}).get("validationErrors", [])
        return [e["field"] for e in errors]


def refused(call: Callable[[], Any]) -> Problem:
    """The problem `call` was refused with; fails when it succeeded."""
    try:
        call()
    except HttpResponseError as error:
        problem = Problem(error)
        assert problem.content_type == "application/problem+json", problem.content_type
        assert problem.body["status"] == problem.status
        assert {"type", "title", "detail", "instance"} <= set(problem.body)
        return problem
    raise AssertionError("the request was accepted")
