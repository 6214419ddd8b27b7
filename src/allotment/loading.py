"""Reading the catalog and the model price table from TOML files (decimals stay exact).

The catalog file is the admin API's catalog document (`http/catalog_document.py`): one format
for the file and for `PUT /api/v1/admin/catalog`. This module is app wiring, so it may use it.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import update_catalog
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.cost import PriceTable
from allotment.http.catalog_document import CatalogDocument, reported
from allotment.http.catalog_mapping import to_catalog_update
from allotment.http.price_document import PriceDocument, to_price_table

__all__ = ("load_catalog", "load_price_table")


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file, parse_float=Decimal)


def load_catalog(path: Path, now: datetime | None = None) -> Catalog:
    """Load and validate a catalog file.

    Raises:
        CatalogDocumentInvalid: the document breaks PLN-10; the message names each field and
            key as the document spells them.
        msgspec.ValidationError: the document has the wrong shape (unknown or mistyped field).
    """
    document = msgspec.convert(_read_toml(path), type=CatalogDocument)
    update = to_catalog_update(document, now or datetime.now(UTC))
    empty = Catalog(features={}, credit_models={}, plans={})
    try:
        catalog, _ = update_catalog(empty, update, frozenset())
    except CatalogInvalid as invalid:
        raise reported(invalid) from None
    return catalog


def load_price_table(path: Path) -> PriceTable:
    """Load and validate a model price file (OPS-D6).

    Raises:
        PriceDocumentInvalid: a value is out of bounds; the message names each field.
        msgspec.ValidationError: the document has the wrong shape (unknown or mistyped field).
    """
    return to_price_table(msgspec.convert(_read_toml(path), type=PriceDocument))
