"""Usage charges per pricing type (INV-32..INV-34). Results are unrounded; the invoice rounds
each line once (INV-41), so callers pass the whole period's quantity, never one event's."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from allotment.domain.catalog import FeatureLink, PriceTier, PricingType, ResetMode
from allotment.domain.money import ZERO

__all__ = ("graduated_charge", "usage_charge")


def graduated_charge(tiers: Sequence[PriceTier], quantity: Decimal) -> Decimal:
    """Slab pricing (INV-33): tier i covers (u[i-1], u[i]]; a tier's flat fee is charged once
    when at least one unit lands in it, so Q = 0 costs nothing."""
    total = ZERO
    lower = ZERO
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = max(ZERO, upper - lower)
        if units > 0:
            total += units * tier.price_per_unit + tier.flat_fee
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    return total


def usage_charge(link: FeatureLink, period_units: Decimal, lifetime_units: Decimal) -> Decimal:
    """The charge C for one period's billable units of one feature.

    Args:
        link: the plan's pricing of the feature.
        period_units: units billed in this period (Q).
        lifetime_units: cumulative units up to the period end; positions graduated tiers when
            the link accumulates (INV-34). Ignored otherwise.
    """
    match link.pricing_type:
        case PricingType.INCLUDED:
            return ZERO
        case PricingType.USAGE_BASED:
            assert link.price_per_unit is not None
            return period_units * link.price_per_unit
        case PricingType.GRADUATED:
            if link.reset_mode is ResetMode.ACCUMULATE:
                before = lifetime_units - period_units
                return graduated_charge(link.tiers, lifetime_units) - graduated_charge(
                    link.tiers, before
                )
            return graduated_charge(link.tiers, period_units)
