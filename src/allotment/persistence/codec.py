"""The journal's record format and its reusable msgpack encoder and decoder.

Evolution rules: facts are tagged unions with stable tags; new fields get defaults; a
removed field must stay decodable. `FORMAT_VERSION` changes only when the framing changes.
"""

from __future__ import annotations

import uuid

import msgspec

from allotment.domain.catalog_facts import CatalogFact
from allotment.domain.facts import Fact

__all__ = ("FORMAT_VERSION", "JournalRecord", "decode_record", "encode_record")

FORMAT_VERSION = 2  # 2: records carry a magic and their position (journal_format.py)


class JournalRecord(msgspec.Struct, frozen=True, array_like=True):
    """One turn's facts for one customer, or one catalog fact (customer_id is None)."""

    position: int
    customer_id: uuid.UUID | None
    facts: list[Fact]
    catalog: list[CatalogFact]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalRecord)


def encode_record(record: JournalRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(payload: bytes) -> JournalRecord:
    return _decoder.decode(payload)
