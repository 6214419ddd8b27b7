"""Payments no customer of an environment owns (MNY-C3): kept by the shard beside its catalog,
journalled as environment facts, snapshotted with the shard, and listed with the customers'
own unapplied payments."""

from __future__ import annotations

from collections.abc import Iterable

from allotment.domain.payment_records import PaymentRecord, PaymentStatus
from allotment.runtime.directory import CustomerDirectory

__all__ = ("EnvironmentPayments", "unapplied_payments")


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
