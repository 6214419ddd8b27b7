"""The journal's record format and its reusable msgpack encoder and decoder.

Evolution rules: facts are tagged unions with stable tags; new fields get defaults; a
removed field must stay decodable. `FORMAT_VERSION` changes only when the framing changes.
Catalog facts of older versions are read here and converted to today's (`legacy_catalog.py`):
nothing past this module sees them.
"""

from __future__ import annotations

import uuid

import msgspec

from allotment.domain.catalog_facts import CatalogUpdated, FeatureAutoCreated
from allotment.domain.cost import PricesReplaced
from allotment.domain.facts import Fact, KeysClaimed, PaymentRecorded
from allotment.domain.meters import CloudEventRecorded, MeterDefined, MeterDeleted
from allotment.domain.om_notify_rules import NotificationRuleSet
from allotment.persistence.legacy_catalog import CatalogUpsertedV0, to_catalog_updated
from allotment.persistence.ports import JournalRecord

__all__ = ("FORMAT_VERSION", "decode_record", "encode_record")

FORMAT_VERSION = 2  # 2: records carry a magic and their position (journal_format.py)


class _RecordAnyVersion(msgspec.Struct, frozen=True, array_like=True):
    """A record as `JournalRecord`, whose catalog facts may be of an older version."""

    position: int
    customer_id: uuid.UUID | None
    facts: list[Fact]
    catalog: list[
        CatalogUpdated
        | FeatureAutoCreated
        | PaymentRecorded
        | PricesReplaced
        | MeterDefined
        | MeterDeleted
        | CloudEventRecorded
        | NotificationRuleSet
        | KeysClaimed
        | CatalogUpsertedV0
    ]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalRecord)
_any_version_decoder = msgspec.msgpack.Decoder(_RecordAnyVersion)


def encode_record(record: JournalRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(payload: bytes) -> JournalRecord:
    """Decode one record, converting catalog facts of older versions.

    Raises:
        msgspec.ValidationError, msgspec.DecodeError: not a record of any known version.
    """
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError as error:  # rare: old catalog records only, so try after
        try:
            old = _any_version_decoder.decode(payload)
        except msgspec.ValidationError:
            raise error from None  # the first error describes today's format
    return JournalRecord(
        old.position,
        old.customer_id,
        old.facts,
        [to_catalog_updated(f) if isinstance(f, CatalogUpsertedV0) else f for f in old.catalog],
    )
