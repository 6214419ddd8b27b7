"""Credit notes across crashes (CN-12, CN-21; docs/credit-notes.md): a note whose record was
journalled but whose reply never left is kept exactly once, and a retry with its key answers
it; a note whose record never reached the journal is gone, and its number is given again, so
the numbers on disk stay 1..n.

Each scenario runs on the durable path (a file journal under a tmp data dir), then restarts on
the same data dir, as `allotment serve` would after `kill -9`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditLineRequest,
    CreditNoteShown,
)
from allotment.domain.credit_note_state import CreditNoteReason
from allotment.persistence.journal import FileJournal
from allotment.runtime.clock import ManualClock
from allotment.runtime.system import ActorSystem
from allotment.runtime.turns import Turns
from tests.conftest import START
from tests.http.helpers import paid_subscriber
from tests.reliability.durable import durable, picture


class Crash(Exception):
    """The process dies here: nothing after this point runs."""


def _command(system: ActorSystem, invoice_id: str, key: str | None) -> CreateCreditNote:
    (state,) = system.shard("test").states()
    invoice = state.invoices[uuid.UUID(invoice_id)]
    line = CreditLineRequest(invoice_line_id=invoice.items[0].id, amount=Decimal("5.00"))
    return CreateCreditNote(
        invoice_id=invoice.id,
        reason=CreditNoteReason.SERVICE_ISSUE,
        lines=(line,),
        idempotency_key=key,
    )


def _notes(system: ActorSystem) -> list[Any]:
    (state,) = system.shard("test").states()
    return list(state.credit_notes.values())


def test_a_note_journalled_but_never_answered_is_kept_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(START)
    with durable(tmp_path, clock) as (client, system):
        invoice_id = paid_subscriber(client, "c")["invoice"]["id"]
        command = _command(system, invoice_id, "once")
        real = Turns.durable

        async def durable_then_die(self: Turns, position: int) -> None:
            await real(self, position)
            raise Crash  # the record is on disk; the reply never leaves

        with monkeypatch.context() as patch:
            patch.setattr(Turns, "durable", durable_then_die)
            with pytest.raises(Crash):
                client.blocking_portal.call(system.shard("test").credit_note, command)
        live = picture(system)
    with durable(tmp_path, clock) as (client, system):
        assert picture(system) == live
        (note,) = _notes(system)
        retried = client.blocking_portal.call(system.shard("test").credit_note, command)
        assert isinstance(retried, CreditNoteShown) and retried.replayed
        assert (retried.note.id, retried.note.number) == (note.id, "CN-000001")
        other = client.blocking_portal.call(
            system.shard("test").credit_note, _command(system, invoice_id, None)
        )
        assert isinstance(other, CreditNoteShown) and other.note.number == "CN-000002"


def test_a_note_that_never_reached_the_journal_is_gone_and_its_number_given_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(START)
    with durable(tmp_path, clock, rebuild_every_s=3600.0) as (client, system):
        invoice_id = paid_subscriber(client, "c")["invoice"]["id"]
        command = _command(system, invoice_id, "lost")
        acknowledged = picture(system)

        def die(*_: object) -> int:
            raise OSError("the disk went away")

        with monkeypatch.context() as patch:
            patch.setattr(FileJournal, "append", die)
            with pytest.raises(Exception, match="journalling"):
                client.blocking_portal.call(system.shard("test").credit_note, command)
        assert client.blocking_portal.call(system.rebuild, "test") is True
        assert picture(system) == acknowledged and not _notes(system)
        again = client.blocking_portal.call(system.shard("test").credit_note, command)
        assert isinstance(again, CreditNoteShown) and not again.replayed
        assert again.note.number == "CN-000001"  # the lost turn's number, never answered
        live = picture(system)
    with durable(tmp_path, clock) as (_, recovered):
        assert picture(recovered) == live
        (note,) = _notes(recovered)
        assert note.number == "CN-000001"
