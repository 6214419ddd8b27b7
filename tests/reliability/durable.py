"""A server on the durable path, built as `allotment serve` builds it, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.journal_io import JournalIO
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.wiring import build_system
from tests.conftest import KEY

__all__ = ("durable", "picture")


@contextmanager
def durable(
    data_dir: Path, clock: ManualClock, journal_io: JournalIO | None = None, **settings: Any
) -> Iterator[tuple[TestClient[FastPath], ActorSystem]]:
    """A server on a file journal (fsync), as `allotment serve` builds it."""
    config = Settings(data_dir=data_dir, clock="manual", **settings)
    system = build_system(config, clock, journal_io=journal_io)
    store = KeyStore()
    store.add(KEY)
    app = create_app(config, system, store)
    with TestClient(app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"
        yield client, system


def picture(system: ActorSystem) -> list[bytes]:
    return sorted(msgspec.msgpack.encode(s) for s in system.shard("test").states())
