"""Reading the catalog and the model price table from TOML files (decimals stay exact).

The catalog file is the admin API's catalog document (`http/catalog_document.py`): one format
for the file and for `PUT /api/v1/admin/catalog`. This module is app wiring, so it may use it.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources.abc import Traversable
from typing import Any

import msgspec

from allotment.config import DEFAULT_CATALOG, DEFAULT_MODEL_PRICES
from allotment.domain.catalog import Catalog
from allotment.domain.catalog_facts import update_catalog
from allotment.domain.catalog_rules import CatalogInvalid
from allotment.domain.cost import PriceTable
from allotment.http.catalog_document import CatalogDocument, CatalogDocumentInvalid, reported
from allotment.http.catalog_mapping import to_catalog_update
from allotment.http.price_document import PriceDocument, PriceDocumentInvalid, to_price_table

__all__ = ("LoadFailed", "load_catalog", "load_price_table", "source_name")

_TOML_AT = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")


class LoadFailed(ValueError):
    """A catalog or price file cannot be read, is not TOML, or is not a valid document. The
    message is one line naming the file (and, for TOML syntax, the line and column): start-up
    prints it as it is (OPS-P3). Fix the file, or pass another with --catalog/--model-prices."""


def source_name(source: Traversable | None, default: Traversable) -> str:
    """How messages and the banner name a file: its path, or the package data it defaults to."""
    return str(source) if source is not None else f"{default.name} (built into allotment)"


def _read_toml(source: Traversable, what: str) -> dict[str, Any]:
    try:
        with source.open("rb") as file:
            return tomllib.load(file, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        # tomllib puts the position in the message only: "Invalid value (at line 3, column 9)"
        at = _TOML_AT.match(str(error))
        if at is None:  # "Invalid value (at end of document)"
            message = str(error).replace("(at end of document)", "at the end of the file")
            raise LoadFailed(f"{what} {source} is not valid TOML: {message}") from None
        where = f"{source}, line {at['line']}, column {at['column']}"
        raise LoadFailed(f"{what} {where} is not valid TOML: {at['what']}") from None
    except OSError as error:
        raise LoadFailed(f"cannot read {what} {source}: {error.strerror or error}") from None


def load_catalog(source: Traversable | None = None, now: datetime | None = None) -> Catalog:
    """Load and validate a catalog file; `None` is the demo catalog shipped in the package.

    Raises:
        LoadFailed: unreadable, not TOML (with line and column), the wrong shape (unknown or
            mistyped field), or a document that breaks PLN-10 (naming each field and key).
    """
    name = source_name(source, DEFAULT_CATALOG)
    raw = _read_toml(source or DEFAULT_CATALOG, "catalog")
    try:
        document = msgspec.convert(raw, type=CatalogDocument)
        update = to_catalog_update(document, now or datetime.now(UTC))
        empty = Catalog(features={}, credit_models={}, plans={})
        try:
            catalog, _ = update_catalog(empty, update, frozenset())
        except CatalogInvalid as invalid:
            raise reported(invalid) from None
    except (msgspec.ValidationError, CatalogDocumentInvalid) as error:
        raise LoadFailed(f"catalog {name} is invalid: {error}") from None
    return catalog


def load_price_table(source: Traversable | None = None) -> PriceTable:
    """Load and validate the model price table (OPS-D6); `None` is the table shipped in the
    package.

    Raises:
        LoadFailed: unreadable, not TOML (with line and column), the wrong shape (unknown or
            mistyped field), or a value out of bounds (naming each field).
    """
    raw = _read_toml(source or DEFAULT_MODEL_PRICES, "model price table")
    try:
        return to_price_table(msgspec.convert(raw, type=PriceDocument))
    except (msgspec.ValidationError, PriceDocumentInvalid) as error:
        name = source_name(source, DEFAULT_MODEL_PRICES)
        raise LoadFailed(f"model price table {name} is invalid: {error}") from None
