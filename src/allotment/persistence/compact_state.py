"""A customer at rest: its state in the snapshot's msgpack encoding, deflated with a preset
dictionary of the state's field names, behind the keys the directory indexes it by.

Most customers of a large shard are touched rarely; their decoded `CustomerState` (a tree of
structs, dicts, Decimals and datetimes) weighs 8 to 12 KB, the stored form under 1 KB. The
directory keeps the decoded form only for a bounded warm set (runtime/directory.py).

A stored customer is `<u16 keys length><keys><state>`, deflated. `Keys` holds what the
directory's indexes and the timers need, so a checkpoint and a lazy recovery read them without
decoding the state. The dictionary is derived from the state's types: a version that changes
a field changes it, and a snapshot that carries another dictionary is decoded eagerly.
"""

from __future__ import annotations

import enum
import struct
import typing
import uuid
import zlib
from datetime import datetime
from typing import Any

import msgspec

from allotment.domain.payment_records import PaymentStatus
from allotment.domain.state import CustomerState

__all__ = (
    "DICTIONARY",
    "Keys",
    "decode_state",
    "encode_stored",
    "keys_of",
    "read_keys",
    "restored",
)

_WBITS = -15  # raw deflate: no zlib header or checksum (the snapshot frames have their own)
_LENGTH = struct.Struct("<H")


class Keys(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What the directory indexes a customer by (`CustomerDirectory.reindex`) and when its
    timer is due: read from a snapshot's index without decoding the customer."""

    id: uuid.UUID
    next_due_at: datetime | None
    external_id: str | None
    stripe_customer_id: str | None
    email: str | None
    subjects: tuple[str, ...]  # of a live OpenMeter customer only (OM-8)
    owned: tuple[uuid.UUID, ...]  # subscriptions, invoices, credit notes
    plans: tuple[uuid.UUID, ...]  # of its subscriptions (PLN-12)
    note_keys: tuple[str, ...]  # CN-12
    note_numbers: tuple[str, ...]  # CN-22
    unapplied: bool  # holds an unapplied payment (MNY-C3)
    reservations: tuple[str, ...]  # RSV-28
    entitlements: tuple[str, ...]  # OM-108
    grants: tuple[str, ...]  # OM-121
    sequences_used: dict[str, int]  # CN-21


def keys_of(state: CustomerState) -> Keys:
    details = state.openmeter
    live = details is not None and details.deleted_at is None
    notes = state.credit_notes.values()
    return Keys(
        id=state.id,
        next_due_at=state.next_due_at,
        external_id=state.external_id,
        stripe_customer_id=state.stripe_customer_id,
        email=state.profile.email,
        subjects=details.subject_keys if live and details is not None else (),
        owned=(*(s.id for s in state.subscriptions.values()), *state.invoices, *state.credit_notes),
        plans=tuple(s.plan_id for s in state.subscriptions.values()),
        note_keys=tuple(n.idempotency_key for n in notes if n.idempotency_key is not None),
        note_numbers=tuple(n.number for n in notes if n.number is not None),
        unapplied=any(p.status is PaymentStatus.UNAPPLIED for p in state.payments.values()),
        reservations=tuple(state.reservations),
        entitlements=tuple(state.entitlements),
        grants=tuple(g.public_id for e in state.entitlements.values() for g in e.grants.values()),
        sequences_used=dict(state.sequences_used),
    )


def _names(tp: Any, seen: set[Any]) -> list[str]:
    """Every field name and enum value reachable from `tp`, depth first."""
    if isinstance(tp, type) and tp in seen:
        return []
    out: list[str] = []
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        seen.add(tp)
        for field in msgspec.structs.fields(tp):
            out.append(field.encode_name)
            out += _names(field.type, seen)
        return out
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        seen.add(tp)
        return [m.value for m in tp if isinstance(m.value, str)]
    for arg in typing.get_args(tp):
        out += _names(arg, seen)
    return out


# Deflate matches from the end of the dictionary most cheaply: the state's own field names
# (met first in the walk) go last.
DICTIONARY = b"".join(msgspec.msgpack.encode(n) for n in reversed(_names(CustomerState, set())))

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")  # 16 bytes, not 36 characters
_state = msgspec.msgpack.Decoder(CustomerState)
_keys = msgspec.msgpack.Decoder(Keys)


def encode_stored(state: CustomerState, keys: Keys | None = None) -> bytes:
    """The stored form of `state` (its keys computed unless given)."""
    index = _encoder.encode(keys if keys is not None else keys_of(state))
    packer = zlib.compressobj(1, zlib.DEFLATED, _WBITS, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    body = packer.compress(_LENGTH.pack(len(index)) + index + _encoder.encode(state))
    return body + packer.flush()


def _inflate(stored: bytes, dictionary: bytes) -> bytes:
    return zlib.decompressobj(_WBITS, dictionary).decompress(stored)


def decode_state(stored: bytes, dictionary: bytes = DICTIONARY) -> CustomerState:
    plain = _inflate(stored, dictionary)
    (length,) = _LENGTH.unpack_from(plain)
    return _state.decode(memoryview(plain)[_LENGTH.size + length :])


def read_keys(stored: bytes, dictionary: bytes = DICTIONARY) -> Keys:
    plain = _inflate(stored, dictionary)
    (length,) = _LENGTH.unpack_from(plain)
    return _keys.decode(memoryview(plain)[_LENGTH.size : _LENGTH.size + length])


def restored(stored: bytes, dictionary: bytes) -> bytes:
    """`stored`, made with `dictionary`, in this version's form (the same when unchanged)."""
    if dictionary == DICTIONARY:
        return stored
    return encode_stored(decode_state(stored, dictionary))
