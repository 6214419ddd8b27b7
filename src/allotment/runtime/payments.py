"""Payments no customer of an environment owns (MNY-C3): kept by the shard beside its catalog,
journalled as environment facts, snapshotted with the shard, and listed with the customers'
own unapplied payments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from allotment.domain.facts import PaymentRecorded
from allotment.domain.payment_records import PaymentRecord, PaymentStatus
from allotment.runtime.directory import CustomerDirectory

if TYPE_CHECKING:
    from allotment.runtime.local_shard import LocalShard

__all__ = ("EnvironmentPayments", "record_unapplied_payment", "unapplied_payments")


class EnvironmentPayments:
    """The environment's unapplied payments, by checkout session: the first record of a
    session wins, so a repeated delivery changes nothing."""

    __slots__ = ("_by_session",)

    def __init__(self) -> None:
        self._by_session: dict[str, PaymentRecord] = {}

    def __len__(self) -> int:
        return len(self._by_session)

    def get(self, session_id: str) -> PaymentRecord | None:
        return self._by_session.get(session_id)

    def add(self, record: PaymentRecord) -> None:
        self._by_session.setdefault(record.payment.session_id, record)

    def update(self, records: Iterable[PaymentRecord]) -> None:
        for record in records:
            self.add(record)

    def values(self) -> list[PaymentRecord]:
        return list(self._by_session.values())


def unapplied_payments(
    environment: EnvironmentPayments, directory: CustomerDirectory
) -> list[PaymentRecord]:
    """Every unapplied payment of the environment, oldest first: the environment's own and
    those in customers' states (only customers the directory indexed as holding one)."""
    records = environment.values()
    for customer_id in directory.with_unapplied_payments:
        actor = directory.get(customer_id)
        if actor is not None:
            records += [
                p for p in actor.state.payments.values() if p.status is PaymentStatus.UNAPPLIED
            ]
    return sorted(records, key=lambda r: (r.recorded_at, r.payment.session_id))


async def record_unapplied_payment(shard: LocalShard, record: PaymentRecord) -> PaymentRecord:
    """Keep a payment no customer owns (MNY-C3), journalled as an environment fact; a
    payment already kept (same session) is returned as it was recorded."""
    shard.turns.admit(write=True)
    known = shard.environment_payments.get(record.payment.session_id)
    if known is not None:
        return known
    position = shard.turns.commit_catalog(PaymentRecorded(at=record.recorded_at, record=record))
    shard.environment_payments.add(record)
    await shard.turns.durable(position)
    return record
