"""`allotment reshard` (docs/scale-out.md SCL-23..SCL-26): 3 -> 4 -> 2 shards keep every
customer, balance, usage and id; refusals change nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from allotment.cli import main
from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.persistence.shard_layout import recorded_shards
from allotment.runtime.clock import ManualClock
from allotment.runtime.sharded_system import ShardedSystem
from allotment.runtime.sharding import ShardRouter
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.helpers import C, check, create_customer, event, grant, ok, paid_subscriber

CUSTOMERS = 36
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def _client(data_dir: Path, shards: int) -> tuple[TestClient[Any], ShardedSystem]:
    settings = Settings(clock="manual", data_dir=data_dir, shards=shards)
    system = build_system(settings, ManualClock(START))
    assert isinstance(system, ShardedSystem)
    store = KeyStore()
    store.add(KEY)
    client = TestClient(create_app(settings, system, store), base_url="http://testserver.local")
    client.headers["Authorization"] = f"Bearer {KEY}"
    return client, system


def _populate(client: TestClient[Any]) -> None:
    """Every customer holds usage and credits; every third a paid subscription."""
    for n in range(CUSTOMERS):
        ref = f"cust-{n}"
        if n % 3 == 0:
            paid_subscriber(client, ref)
        else:
            create_customer(client, ref)
        assert grant(client, ref, 100 + n).status_code == 201
        for k in range(n % 4 + 1):
            assert event(client, ref, f"{ref}-e{k}").status_code in (200, 201, 202)


def _view(client: TestClient[Any]) -> dict[str, Any]:
    """What a client sees of every customer: profile and ids, pools, invoices, usage."""
    return {
        f"cust-{n}": {
            "customer": ok(client.get(f"{C}/customers/cust-{n}")),
            "pools": ok(client.get(f"{C}/credits/cust-{n}/pools")),
            "invoices": ok(client.get(f"{C}/billing/invoices/cust-{n}")),
            "api_calls": check(client, f"cust-{n}", "api_calls"),
        }
        for n in range(CUSTOMERS)
    }


def _owned_ids(view: dict[str, Any]) -> list[tuple[uuid.UUID, str]]:
    """(id, owner's reference id) for each invoice and subscription the view shows."""
    found: list[tuple[uuid.UUID, str]] = []
    for owner, seen in view.items():
        for invoice in seen["invoices"]:
            found.append((uuid.UUID(invoice["id"]), owner))
            if invoice.get("subscriptionId"):
                found.append((uuid.UUID(invoice["subscriptionId"]), owner))
    return found


def _assert_routes(system: ShardedSystem, view: dict[str, Any]) -> None:
    """SCL-4, SCL-26: each id reaches, on the one shard its tag names, its owner."""
    router = system.route("test")
    assert isinstance(router, ShardRouter)

    async def owners() -> list[str | None]:
        return [
            await router.read_on_owner(entity_id, lambda state, _c, _n: state.external_id)
            for entity_id, _ in _owned_ids(view)
        ]

    assert len(_owned_ids(view)) >= CUSTOMERS // 3  # every subscriber's first invoice
    assert anyio.run(owners) == [owner for _, owner in _owned_ids(view)]
    assert router.routes.searches == 0


def _reshard(data_dir: Path, shards: int, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["reshard", "--data-dir", str(data_dir), "--shards", str(shards)]) == 0
    return capsys.readouterr().out


def test_reshard_3_to_4_to_2_keeps_every_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SCL-23..SCL-26: a 3-shard directory with usage, credits and subscriptions, resharded
    to 4 and then to 2, serves every customer as before, and every id still routes."""
    client, system = _client(tmp_path, 3)
    with client:
        _populate(client)
        before = _view(client)
    del client, system

    out = _reshard(tmp_path, 4, capsys)
    assert recorded_shards(tmp_path) == 4
    backup = tmp_path / out.split("kept in ")[1].strip()
    assert sorted(p.name for p in backup.iterdir()) == ["0", "1", "2", "count"]
    client, system = _client(tmp_path, 4)
    with client:
        assert _view(client) == before
        counts = [member.shard("test").customer_count() for member in system.members]
        assert sum(counts) == CUSTOMERS and all(counts)
        _assert_routes(system, before)
        assert event(client, "cust-1", "cust-1-e0").status_code == 409  # still a duplicate (SCL-24)
        assert event(client, "cust-1", "cust-1-new").status_code in (200, 201, 202)
        before["cust-1"]["api_calls"] = check(client, "cust-1", "api_calls")
    del client, system

    _reshard(tmp_path, 2, capsys)
    client, system = _client(tmp_path, 2)
    with client:
        assert _view(client) == before
        _assert_routes(system, before)


def test_refusals_change_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SCL-23: M < 1, M == N, and a data directory a server holds are refused, non-zero,
    with the directory as it was."""
    client, _ = _client(tmp_path / "served", 3)
    with client:
        create_customer(client, "only")
    # A copy: this process still holds the stopped system's share of the original's lock.
    tmp_path = Path(shutil.copytree(tmp_path / "served", tmp_path / "stopped"))
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    for shards in ("0", "3"):
        assert main(["reshard", "--data-dir", str(tmp_path), "--shards", shards]) == 2
    with subprocess.Popen(  # another process holds the lock, as a running server does
        [sys.executable, "-c", _HOLDER, str(tmp_path / "allotment.lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        assert main(["reshard", "--data-dir", str(tmp_path), "--shards", "4"]) == 2
        holder.stdin.close()
    err = capsys.readouterr().err
    assert "at least 1" in err and "already holds 3" in err and "stop the server" in err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == listing
    assert recorded_shards(tmp_path) == 3
