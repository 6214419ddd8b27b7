"""Client tests: the sync client against a real `allotment serve` (one per module), the async
client against the in-process app through Litestar's test client (an httpx.AsyncClient that
runs the app's lifespan)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from allotment.client import AsyncClient, Client
from allotment.config import Settings
from allotment.http.fast_path import FastPath
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import KEY
from tests.reliability.server import KEY as SERVER_KEY
from tests.reliability.server import Server


@pytest.fixture
def system(settings: Settings, clock: ManualClock) -> ActorSystem:
    """One in-memory system: the client is an edge, the server paths are tested elsewhere."""
    return build_system(settings, clock, persistent=False)


@pytest.fixture
async def async_client(app: FastPath) -> AsyncIterator[AsyncClient]:
    url = "http://testserver.local"
    async with (
        AsyncTestClient(app, base_url=url) as http,
        AsyncClient(url, KEY, http=http) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server, one per module: the sync client talks to it over TCP."""
    data_dir: Path = tmp_path_factory.mktemp("client-server")
    server = Server(data_dir)
    yield server
    server.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, SERVER_KEY) as client:
        yield client
