"""The shard's side of credit notes (issue 18, docs/credit-notes.md): which customer's actor a
command goes to, and the checks that span customers (CN-12 keys, CN-22 numbers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from allotment.domain.credit_note_commands import CreateCreditNote, CreditNoteCommand
from allotment.domain.credit_note_state import NumberKind
from allotment.domain.replies import Rejected, RejectionKind, Reply
from allotment.runtime.actor import CustomerActor

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("run_credit_note",)


async def run_credit_note(shard: LocalShard, command: CreditNoteCommand) -> Reply:
    """Run `command` on its owner's actor, with no await before the turn: the checks made
    here against the environment's indexes hold when the turn runs."""
    shard.turns.admit(write=True)
    if isinstance(command, CreateCreditNote):
        actor, refused = _creator(shard, command)
        if refused is not None:
            return refused
    else:
        actor = shard.directory.owner(command.note_id)
        if actor is None or command.note_id not in actor.state.credit_notes:
            return Rejected(kind=RejectionKind.NOT_FOUND, message="id: no such credit note.",
                            field="id")  # fmt: skip
    assert actor is not None
    return await shard.turns.turn(actor, command, shard.context())


def _creator(
    shard: LocalShard, command: CreateCreditNote
) -> tuple[CustomerActor | None, Rejected | None]:
    directory = shard.directory
    if command.idempotency_key is not None:
        holder = directory.note_key_owner(command.idempotency_key)
        if holder is not None:  # CN-12: the holder answers the same note, or a conflict
            return holder, None
    actor = directory.owner(command.invoice_id)
    if actor is None or command.invoice_id not in actor.state.invoices:
        return None, Rejected(kind=RejectionKind.NOT_FOUND, message="invoice_id: no such invoice.",
                              field="invoice_id")  # fmt: skip
    number = command.number
    if number is not None:  # CN-22
        prefix = shard.turns.sequences.prefixes[NumberKind.CREDIT_NOTE]
        if number.startswith(prefix):
            message = f"credit_note_number: numbers starting {prefix!r} are the sequence's."
            return None, Rejected(kind=RejectionKind.INVALID, field="credit_note_number",
                                  message=message)  # fmt: skip
        if number in directory.note_numbers:
            return None, Rejected(kind=RejectionKind.CONFLICT, field="credit_note_number",
                message="credit_note_number: already used.")  # fmt: skip
    return actor, None
