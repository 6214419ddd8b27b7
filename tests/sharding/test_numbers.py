"""Invoice and credit-note numbers over shards (docs/scale-out.md SCL-70..SCL-73): each shard
takes its own residue class of the environment's sequences, so numbers keep the documented
`INV-000001` / `CN-000001` format and are unique across shards, and stay unique after a
reshard."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from allotment.cli import main
from allotment.domain.credit_note_state import NumberKind
from allotment.runtime.numbering import Sequences
from allotment.runtime.placement import placement_tag, shard_of
from allotment.runtime.sharded_system import ShardedSystem
from tests.conftest import KEY
from tests.http.helpers import create_customer, subscribe
from tests.sharding.test_reshard import _client as sharded_client

FORMAT = re.compile(r"^(INV|CN)-\d{6}$")


def _client(data_dir: Path, shards: int) -> tuple[TestClient[Any], ShardedSystem]:
    client, system = sharded_client(data_dir, shards)
    client.headers["x-api-key"] = KEY  # the Flexprice paths'
    return client, system


def _numbered(client: TestClient[Any], refs: list[str]) -> dict[str, tuple[str, str]]:
    """Each customer subscribes (a DUE invoice, numbered) and gets a credit note on it:
    ref -> (invoice number, credit-note number)."""
    numbers: dict[str, tuple[str, str]] = {}
    for ref in refs:
        create_customer(client, ref)
        invoice_id = subscribe(client, ref, "pro_monthly")["invoice"]["id"]
        invoice = client.get(f"/v1/invoices/{invoice_id}").json()
        line = invoice["line_items"][0]["id"]
        body = {"invoice_id": invoice_id, "reason": "BILLING_ERROR",
                "line_items": [{"invoice_line_item_id": line, "amount": "1.00"}]}  # fmt: skip
        note = client.post("/v1/creditnotes", json=body)
        assert note.status_code == 201, note.text
        numbers[ref] = (invoice["invoice_number"], note.json()["credit_note_number"])
    return numbers


def _sequence(number: str) -> int:
    return int(number.split("-")[1])


def test_scl70_three_shards_hand_out_disjoint_gap_free_classes(tmp_path: Path) -> None:
    """SCL-70, SCL-73: 15 customers over 3 shards; every number is in the documented format
    and unique, and shard k's sequences are exactly the first of its class k, 3+k, ...
    (gap-free within the shard)."""
    refs = [f"buyer-{n}" for n in range(15)]
    client, _ = _client(tmp_path, 3)
    with client:
        numbers = _numbered(client, refs)
    taken = [number for pair in numbers.values() for number in pair]
    assert all(FORMAT.match(number) for number in taken), taken
    assert len(set(taken)) == len(taken)
    for kind in (0, 1):
        by_shard: dict[int, list[int]] = {}
        for ref, pair in numbers.items():
            shard = shard_of(placement_tag("test", ref), 3)
            by_shard.setdefault(shard, []).append(_sequence(pair[kind]))
        assert len(by_shard) == 3  # the customers really spread over the three shards
        for shard, sequences in by_shard.items():
            assert sorted(sequences) == [shard + 1 + 3 * i for i in range(len(sequences))]


def test_scl72_numbers_stay_unique_after_a_reshard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SCL-71, SCL-72: numbers taken on 3 shards, a reshard to 4, a checkpoint of the new
    shards and a restart, then more customers: every number after the reshard is above every
    number before it, and all are unique (a new shard's own customers need not hold the
    environment's highest number: the snapshot headers carry it through the checkpoint)."""
    client, _ = _client(tmp_path, 3)
    with client:
        before = _numbered(client, [f"early-{n}" for n in range(6)])
    assert main(["reshard", "--data-dir", str(tmp_path), "--shards", "4"]) == 0
    capsys.readouterr()
    client, system = _client(tmp_path, 4)
    with client:
        client.blocking_portal.call(system.checkpoint_all)
    client, _ = _client(tmp_path, 4)
    with client:
        after = _numbered(client, [f"late-{n}" for n in range(8)])
    for kind in (0, 1):
        old = [_sequence(pair[kind]) for pair in before.values()]
        new = [_sequence(pair[kind]) for pair in after.values()]
        assert min(new) > max(old)
        assert len(set(old + new)) == len(old + new)


@pytest.mark.parametrize(("index", "expected"), [(0, [1, 4, 7]), (2, [3, 6, 9])])
def test_scl70_a_shard_takes_its_class_and_takes_back_what_it_did_not_journal(
    index: int, expected: list[int]
) -> None:
    """SCL-70, CN-21: shard `index` of 3 takes the next number of its class; a number handed
    out by a turn that journalled nothing is taken again by the next turn."""
    numbers = Sequences(stride=3, offset=index)
    assert numbers.allocate(NumberKind.INVOICE)[0] == expected[0]
    numbers.settle()  # the turn journalled nothing
    taken = []
    for _ in expected:
        sequence, number = numbers.allocate(NumberKind.INVOICE)
        assert number == f"INV-{sequence:06d}"
        taken.append(sequence)
    assert taken == expected
    numbers.restore({"INVOICE": 10})  # a reshard's floor (SCL-72)
    numbers.settle()
    assert numbers.allocate(NumberKind.INVOICE)[0] == 10 + 1 + (index - 10) % 3
