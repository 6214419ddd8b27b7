"""Cost of goods per event, for margin analytics (EVT-30), and the model price table.

Precedence: `costAmount` as given, then `costInput` priced from the model price table, then the
feature's cost model (`usageUnits x costPerUnit`), else no cost.

An event whose `costInput` names a model the table does not price, and that has neither a
`costAmount` nor a feature cost model, has an **unknown** cost (OPS-D5): it is stored with no
cost, `cost_known` false, and left out of margins rather than counted as free.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from allotment.domain.catalog import Feature
from allotment.domain.commands import CostInput

__all__ = (
    "ModelPrice",
    "PriceTable",
    "PricesReplaced",
    "cost_known",
    "event_cost",
    "price_table_errors",
)

_MILLION = Decimal(1_000_000)
_COST_QUANTUM = Decimal("0.000001")
_PRICE_MAX = Decimal(1_000_000)  # USD per million tokens: far above any model's price
_MODELS_MAX = 1_000
_TEXT_MAX = 200
_SOURCES_MAX = 20


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    provider: str
    input_per_million: Decimal
    output_per_million: Decimal


class PriceTable(msgspec.Struct, frozen=True, kw_only=True):
    """Model prices in USD per million tokens, as of `as_of` (an ISO date), with where they
    were taken from (`sources`: the providers' pricing pages)."""

    as_of: str
    models: dict[str, ModelPrice]
    sources: tuple[str, ...] = ()

    def lookup(self, model: str, provider: str | None) -> ModelPrice | None:
        price = self.models.get(model)
        if price is None or (provider is not None and provider.lower() != price.provider):
            return None
        return price

    @property
    def as_of_date(self) -> date:
        return date.fromisoformat(self.as_of)


class PricesReplaced(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="prices_replaced"):
    """An environment fact (OPS-D6): from `at` on, events of the environment are priced with
    `table`. Journalled when an admin replaces the prices, or when a start finds a price file
    dated later than the table recorded."""

    at: datetime
    table: PriceTable


def price_table_errors(table: PriceTable) -> list[str]:
    """What makes `table` unusable, each naming its field as the price document spells it
    (`asOf`, `models.<name>.inputPerMillion`, ...); empty when it is valid (OPS-D6)."""
    errors: list[str] = []
    try:
        table.as_of_date  # noqa: B018 (parsing is the check)
    except ValueError:
        errors.append(f"asOf: {table.as_of!r} is not an ISO date (YYYY-MM-DD)")
    if not 0 < len(table.models) <= _MODELS_MAX:
        errors.append(f"models: between 1 and {_MODELS_MAX} models")
    if len(table.sources) > _SOURCES_MAX or any(
        not s.strip() or len(s) > _TEXT_MAX for s in table.sources
    ):
        errors.append(f"sources: at most {_SOURCES_MAX}, each 1 to {_TEXT_MAX} characters")
    for name, price in table.models.items():
        where = f"models.{name}"
        if not name.strip() or len(name) > _TEXT_MAX or name != price.model:
            errors.append(f"{where}: a model name of 1 to {_TEXT_MAX} characters")
        if not price.provider.strip() or len(price.provider) > _TEXT_MAX:
            errors.append(f"{where}.provider: 1 to {_TEXT_MAX} characters")
        for field, value in (
            ("inputPerMillion", price.input_per_million),
            ("outputPerMillion", price.output_per_million),
        ):
            if not value.is_finite() or not 0 <= value <= _PRICE_MAX:
                errors.append(f"{where}.{field}: a number from 0 to {_PRICE_MAX}")
            elif value != value.quantize(_COST_QUANTUM, ROUND_HALF_UP):
                errors.append(f"{where}.{field}: at most 6 decimal places")
    return errors


def event_cost(
    cost_amount: Decimal | None,
    cost_input: CostInput | None,
    feature: Feature | None,
    units: Decimal,
    prices: PriceTable,
) -> tuple[Decimal | None, str | None]:
    """The event's cost and the provider it was priced with (inferred from the table)."""
    if cost_amount is not None:
        return cost_amount, cost_input.model_provider if cost_input else None
    if cost_input is not None:
        price = prices.lookup(cost_input.model, cost_input.model_provider)
        if price is not None:
            raw = (
                cost_input.input_tokens * price.input_per_million
                + cost_input.output_tokens * price.output_per_million
            ) / _MILLION
            return raw.quantize(_COST_QUANTUM, ROUND_HALF_UP), price.provider
    if feature is not None and feature.cost_per_unit is not None:
        return units * feature.cost_per_unit, cost_input.model_provider if cost_input else None
    return None, cost_input.model_provider if cost_input else None


def cost_known(cost_amount: Decimal | None, model: str | None) -> bool:
    """OPS-D5: a cost is unknown exactly when the event named a model and still has no cost.
    By the precedence above, every other event with no cost carries none at all (no
    `costInput`, no `costAmount`, no cost model): nothing was left unpriced. The analytics
    views apply the same rule to every stored event, old ones included."""
    return cost_amount is not None or model is None
