"""What the server sends the analytics worker: msgpack frames on a pipe.

Per environment, an `EnvironmentStart` (catalog, journal positions, customer count), then the
customers' states and the drained audit records in chunks; an `End` closes the stream. The
server only encodes (msgspec, in C); turning records into rows, Arrow and DuckDB happens in
the worker process, off the event loop and its GIL. The `events` and `credit_transactions`
histories are not streamed: the worker exports them from the journal up to
`durable_position`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.payment_records import PaymentRecord
from allotment.domain.state import CustomerState
from allotment.persistence.store_ports import AuditRecord

__all__ = (
    "AuditChunk",
    "End",
    "EnvironmentStart",
    "Frame",
    "StateChunk",
    "decode_frame",
    "encode_frame",
    "read_frame",
)

_LENGTH = struct.Struct("<I")


class EnvironmentStart(msgspec.Struct, frozen=True, kw_only=True, tag="environment"):
    environment: str
    journal_position: int  # the last record the streamed state reflects
    durable_position: int  # the history is exported from the journal up to here
    catalog: Catalog
    customers: int
    unapplied_payments: list[PaymentRecord] = []  # no customer owns them (MNY-C3)


class StateChunk(msgspec.Struct, frozen=True, kw_only=True, tag="states"):
    states: list[CustomerState]


class AuditChunk(msgspec.Struct, frozen=True, kw_only=True, tag="audits"):
    records: list[AuditRecord]


class End(msgspec.Struct, frozen=True, kw_only=True, tag="end"):
    taken_at: datetime


Frame = EnvironmentStart | StateChunk | AuditChunk | End

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)


def encode_frame(frame: Frame) -> bytes:
    payload = _encoder.encode(frame)
    return _LENGTH.pack(len(payload)) + payload


def decode_frame(payload: bytes) -> Frame:
    frame: Frame = _decoder.decode(payload)
    return frame


def read_frame(read_exactly: Callable[[int], bytes]) -> Frame | None:
    """The next frame, read with `read_exactly(n)` (which returns less only at the end)."""
    head = read_exactly(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    payload = read_exactly(length)
    if len(payload) < length:
        raise EOFError("the analytics stream ended inside a frame")
    return decode_frame(payload)
