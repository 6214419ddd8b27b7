"""The catalog document: the admin API's wire shape of a catalog, and its mapping to the domain.

`PUT/GET /api/v1/admin/catalog` take and give this document, and the catalog TOML file
(`loading.py`, `defaults/demo_catalog.toml`) is the same document, so an operator writes one
format.
Field names are the camelCase names of the Tanso DTOs (ClientPlanDto, ClientFeaturePricingDto,
ClientPriceTierDto, PlanCreditAllocationDto). A tier is defined here once, for this document and
for listPlans (`schemas.ClientFeaturePricingDto`).

Why here: a wire shape belongs to the HTTP edge (ARCHITECTURE.md, "Layers"), and the loader is
part of app wiring, which may import every layer, so it reuses this module rather than keep a
second definition. The domain never sees the document: `to_catalog_update` maps it to a
`CatalogUpdated` of domain values, the domain's rules (PLN-10, PLN-12, `domain/catalog_rules.py`)
check that, and `describe` reports their field paths in the document's words. Only what the
domain cannot see is checked here: ids, which are derived from keys, and "inf" spellings.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from allotment.domain.catalog import (
    BillingTiming,
    PlanStatus,
    PricingType,
    ResetMode,
    RolloverPolicy,
)
from allotment.domain.catalog_rules import CatalogInvalid, CatalogProblem, Step

__all__ = (
    "CATALOG_ENCODER",
    "UNBOUNDED",
    "AllocationDoc",
    "CatalogDocument",
    "CatalogDocumentInvalid",
    "ClientPriceTierDto",
    "CreditModelDoc",
    "FeatureDoc",
    "FeatureLinkDoc",
    "PlanDoc",
    "describe",
    "reported",
)


# A number, or "inf" for the last, unbounded tier (PLN-8). Decoded as a Decimal, exactly: msgspec
# reads the string "inf" as Decimal("Infinity"), and CATALOG_ENCODER writes that back as "inf".
# The JSON schema is given here: a Decimal alone would be documented as a number only.
UpTo = Annotated[
    Decimal,
    Meta(
        extra_json_schema={
            "extra": {
                "type": None,  # not the "number" that DecimalAsNumber gives every Decimal
                "oneOf": [
                    {"type": "number"},
                    {"type": "string", "enum": ["inf"]},
                ],
            }
        }
    ),
]
UNBOUNDED = Decimal("Infinity")


def _number_or_inf(value: Decimal) -> object:
    if value == UNBOUNDED:
        return "inf"
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON spelling")  # the catalog never holds one
    return msgspec.Raw(str(value).encode())  # what ENCODER's decimal_format="number" writes


# For bodies holding price tiers (listPlans, the admin catalog): as ENCODER, plus "inf".
CATALOG_ENCODER = msgspec.json.Encoder(decimal_format=_number_or_inf)


class ClientPriceTierDto(
    msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """One tier, in listPlans and in the admin catalog document alike."""

    upTo: UpTo
    pricePerUnit: Decimal
    flatFee: Decimal | None = None


class _Doc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class FeatureLinkDoc(_Doc, kw_only=True):
    featureKey: str
    pricingType: PricingType
    pricePerUnit: Decimal | None = None
    unitLabel: str | None = None
    maxUsage: Decimal | None = None
    resetMode: ResetMode | None = None
    tiers: list[ClientPriceTierDto] | None = None
    creditModelKey: str | None = None
    creditsPerUnit: Decimal | None = None
    notifyAtPercent: list[int] | None = None  # WHK-E3: entitlement.usage.threshold percents


class AllocationDoc(_Doc, kw_only=True):
    creditModelKey: str
    creditAmount: Decimal
    grantExpiresMonths: int | None = None
    hardLimit: bool | None = None
    id: uuid.UUID | None = None
    createdAt: datetime | None = None  # written by GET, ignored by PUT: the catalog keeps it


class PlanDoc(_Doc, kw_only=True):
    key: str
    name: str
    description: str | None = None
    priceAmount: Decimal
    currency: str
    intervalMonths: int
    billingTiming: BillingTiming
    status: PlanStatus = PlanStatus.ACTIVE
    metadata: dict[str, Any] | None = None
    # None rather than an empty default, so that GET writes `[]` for a plan without any.
    features: list[FeatureLinkDoc] | None = None
    creditAllocations: list[AllocationDoc] | None = None
    id: uuid.UUID | None = None
    createdAt: datetime | None = None  # as allocations' createdAt
    modifiedAt: datetime | None = None


class FeatureDoc(_Doc, kw_only=True):
    key: str
    name: str | None = None
    description: str | None = None
    costPerUnit: Decimal | None = None
    id: uuid.UUID | None = None
    autoCreated: bool | None = None  # as GET writes it, so GET output can be PUT back
    # OM-33: the OpenMeter meter whose CloudEvents count toward the feature. Left out of a
    # PUT, the feature keeps the meter it had.
    meterSlug: str | None = None
    meterGroupByFilters: dict[str, str] | None = None


class CreditModelDoc(_Doc, kw_only=True):
    key: str
    name: str | None = None
    denomination: str
    currency: str = "USD"
    hardLimit: bool = False
    rolloverPolicy: RolloverPolicy = RolloverPolicy.NONE
    rolloverCap: Decimal | None = None
    lowBalanceThreshold: Decimal | None = None  # WHK-E10: credits.balance.low below this
    id: uuid.UUID | None = None


class CatalogDocument(_Doc, kw_only=True):
    """A catalog, or the part of one to upsert by key (PUT)."""

    features: list[FeatureDoc] | None = None
    creditModels: list[CreditModelDoc] | None = None
    plans: list[PlanDoc] | None = None


class CatalogDocumentInvalid(ValueError):
    """A catalog document breaks PLN-10 or PLN-12, or names an id that its key does not
    derive. `errors` names each offending field by its path in the document, with its key.

    Nothing is applied: fix the document and submit it again.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# The document's word for each field the domain names in a problem's path. A field missing
# here is a bug in this table (tests/http/test_catalog_document.py checks every one).
WIRE_NAMES = {
    "features": "features",
    "credit_models": "creditModels",
    "plans": "plans",
    "id": "id",
    "key": "key",
    "cost_per_unit": "costPerUnit",
    "denomination": "denomination",
    "currency": "currency",
    "rollover_cap": "rolloverCap",
    "interval_months": "intervalMonths",
    "price_amount": "priceAmount",
    "billing_timing": "billingTiming",
    "feature_key": "featureKey",
    "pricing_type": "pricingType",
    "price_per_unit": "pricePerUnit",
    "max_usage": "maxUsage",
    "tiers": "tiers",
    "up_to": "upTo",
    "flat_fee": "flatFee",
    "credit_model_key": "creditModelKey",
    "credits_per_unit": "creditsPerUnit",
    "credit_allocations": "creditAllocations",
    "credit_amount": "creditAmount",
    "grant_expires_months": "grantExpiresMonths",
    "notify_at_percent": "notifyAtPercent",
    "low_balance_threshold": "lowBalanceThreshold",
}


def describe(problem: CatalogProblem) -> str:
    """`problem` as the API reports it: `plans[pro].features[api_calls].pricePerUnit: ...`."""
    return f"{_wire_path(problem.path)}: {problem.message}"


def _wire_path(path: tuple[Step, ...]) -> str:
    return ".".join(
        WIRE_NAMES[name] if item is None else f"{WIRE_NAMES[name]}[{item}]" for name, item in path
    )


def reported(invalid: CatalogInvalid) -> CatalogDocumentInvalid:
    """The domain's verdict on a document's change, in the document's words."""
    return CatalogDocumentInvalid([describe(p) for p in invalid.problems])
