"""The model price document (OPS-D6): one format for the price file (`model_prices.toml`) and
for `PUT /api/v1/admin/model-prices`, mapped to and from the domain's `PriceTable`.

Prices are USD per million tokens, input and output; `asOf` is the ISO date they were taken
on, and `sources` names where (the providers' pricing pages).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from allotment.domain.cost import ModelPrice, PriceTable, price_table_errors

__all__ = (
    "ModelPriceDoc",
    "PriceDocument",
    "PriceDocumentInvalid",
    "from_price_table",
    "to_price_table",
)


class PriceDocumentInvalid(ValueError):
    """The document is well formed but its values are refused; `errors` name each field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class ModelPriceDoc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: Annotated[str, msgspec.Meta(examples=["openai"])]
    inputPerMillion: Annotated[Decimal, msgspec.Meta(description="USD per million input tokens")]
    outputPerMillion: Annotated[Decimal, msgspec.Meta(description="USD per million output tokens")]


class PriceDocument(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole model price table: it replaces the previous one, it is never merged."""

    asOf: Annotated[str, msgspec.Meta(description="ISO date the prices were taken on")]
    models: dict[str, ModelPriceDoc]
    sources: list[str] = []


def to_price_table(document: PriceDocument) -> PriceTable:
    """The domain's table for `document`, provider names lower-cased.

    Raises:
        PriceDocumentInvalid: a value is out of bounds; nothing is half taken.
    """
    table = PriceTable(
        as_of=document.asOf,
        sources=tuple(document.sources),
        models={
            name: ModelPrice(
                model=name,
                provider=price.provider.lower(),
                input_per_million=price.inputPerMillion,
                output_per_million=price.outputPerMillion,
            )
            for name, price in document.models.items()
        },
    )
    errors = price_table_errors(table)
    if errors:
        raise PriceDocumentInvalid(errors)
    return table


def from_price_table(table: PriceTable) -> PriceDocument:
    return PriceDocument(
        asOf=table.as_of,
        sources=list(table.sources),
        models={
            name: ModelPriceDoc(
                provider=price.provider,
                inputPerMillion=price.input_per_million,
                outputPerMillion=price.output_per_million,
            )
            for name, price in table.models.items()
        },
    )
