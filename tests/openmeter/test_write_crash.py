"""CloudEvents exactly once across `kill -9` (OM-6, OM-7): batches (with retries of earlier
batches mixed in) go through the official client (its async variant under load) to a real
server that checkpoints often; it is killed once a checkpoint
exists and more batches were acknowledged after it; restarted on the same data directory,
every batch is sent again, acknowledged or not, and each distinct (source, id) counts once,
in the entitlement's usage and in the meter's query.
Meters, features and subject keys are journalled, so the restarted server still has them."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import anyio
import pytest
from corehttp.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from openmeter.aio import Client as AsyncClient

from tests.openmeter.support import metered_customer, om_client, tanso, used
from tests.reliability.server import KEY, Server
from tests.waiting import Acked, wait_until_async

pytestmark = pytest.mark.anyio
EXTRA = ("--checkpoint-every", "0.2")
WAIT_S = 300  # a bound on reaching the kill point, never an expectation of speed


def _batch(worker: int, number: int) -> bytes:
    events = [
        {"id": f"w{worker}-{number}-{j}", "source": "crash", "specversion": "1.0",
         "type": "kc.api", "subject": "kc-subject"}
        for j in range(20)
    ]  # fmt: skip
    return json.dumps(events).encode()


def _checkpointed(data_dir: Path) -> bool:
    return any((data_dir / "snapshots" / "test").glob("snapshot-*.snap"))


async def _load_until_killed(server: Server, sent: dict[str, bytes], acked: Acked) -> None:
    """Four workers posting batches through the official client's async variant until the
    kill; a batch is acknowledged when the client's call returns."""
    async with AsyncClient(endpoint=server.url, token=KEY) as client:

        async def ingest(worker: int) -> None:
            mine: list[str] = []
            for number in range(100_000):
                if mine and random.random() < 0.2:  # a client retrying an earlier batch
                    key = random.choice(mine)
                else:
                    key = f"{worker}-{number}"
                    sent[key] = _batch(worker, number)
                    mine.append(key)
                try:
                    await client.events.ingest_events(io.BytesIO(sent[key]))
                except HttpResponseError:
                    continue  # refused (503 while it fails, say): not acknowledged
                except (ServiceRequestError, ServiceResponseError):
                    return  # the server died under us
                acked.add(key)

        async def kill() -> None:
            with anyio.fail_after(WAIT_S):
                await wait_until_async(lambda: _checkpointed(server.data_dir), "a checkpoint")
                await acked.reach(len(acked.keys) + 20)
            server.kill()

        async with anyio.create_task_group() as tg:
            for worker in range(4):
                tg.start_soon(ingest, worker)
            await kill()


async def test_cloudevents_count_once_across_kill_9(tmp_path: Path) -> None:
    server = Server(tmp_path, *EXTRA)
    sent: dict[str, bytes] = {}
    acked = Acked()
    try:
        with tanso(server) as http:
            metered_customer(om_client(server), http, "kc")
        await _load_until_killed(server, sent, acked)
    finally:
        server.stop()
    restarted = Server(tmp_path, *EXTRA)
    try:
        om = om_client(restarted)
        assert om.meters.get("kc_calls").event_type == "kc.api"  # journalled (OM-16)
        with tanso(restarted) as http:
            durable = used(http, "kc", "kc_calls")
            assert durable >= 20 * len(acked.keys)  # acknowledged means durable
            for key in sorted(sent):  # every batch again, through the client: none counts twice
                om.events.ingest_events(io.BytesIO(sent[key]))
            assert used(http, "kc", "kc_calls") == 20 * len(sent)
            events: list[Any] = [{"id": "after", "source": "crash", "specversion": "1.0",
                                  "type": "kc.api", "subject": "kc-subject"}]  # fmt: skip
            om.events.ingest_events(events)  # the subject key survived: still attributed
            assert used(http, "kc", "kc_calls") == 20 * len(sent) + 1
        # The usage's own keys would hide a CloudEvent journalled twice; the meter counts
        # every CloudEvent in the journal and its Parquet history: each pair is there once.
        [row] = om.meters.query_json("kc_calls").data
        assert row.value == 20 * len(sent) + 1
    finally:
        restarted.stop()
