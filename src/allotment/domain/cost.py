"""Cost of goods per event, for margin analytics (EVT-30).

Precedence: `costAmount` as given, then `costInput` priced from the model price table, then the
feature's cost model (`usageUnits x costPerUnit`), else no cost.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import msgspec

from allotment.domain.catalog import Feature
from allotment.domain.commands import CostInput

__all__ = ("ModelPrice", "PriceTable", "event_cost")

_MILLION = Decimal(1_000_000)
_COST_QUANTUM = Decimal("0.000001")


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    provider: str
    input_per_million: Decimal
    output_per_million: Decimal


class PriceTable(msgspec.Struct, frozen=True, kw_only=True):
    """Model prices in USD per million tokens, as of `as_of` (an ISO date)."""

    as_of: str
    models: dict[str, ModelPrice]

    def lookup(self, model: str, provider: str | None) -> ModelPrice | None:
        price = self.models.get(model)
        if price is None or (provider is not None and provider.lower() != price.provider):
            return None
        return price


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
