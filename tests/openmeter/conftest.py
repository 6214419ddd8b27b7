"""The OpenMeter client suites' shared fixtures, one of each per test module: a real server
(on one shard and on three), the official client on it, the Tanso API beside it, and the
client's hidden subject operations. A module that needs another server (a manual clock,
private webhooks) defines its own `server`; the rest follow it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openmeter import Client
from tests.openmeter.subject_ops import subject_entitlements
from tests.openmeter.support import om_client, running_server, tanso
from tests.reliability.server import Server


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, server_shards: int
) -> Iterator[Server]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    with running_server(tmp_path_factory.mktemp(name), server_shards) as running:
        yield running


@pytest.fixture(scope="module")
def om(server: Server) -> Client:
    return om_client(server)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with tanso(server) as client:
        yield client


@pytest.fixture(scope="module")
def subjects(om: Client) -> Any:
    return subject_entitlements(om)
