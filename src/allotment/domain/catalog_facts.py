"""Facts about an environment's catalog, journaled beside customer facts."""

from __future__ import annotations

from datetime import datetime

import msgspec

from allotment.domain.catalog import Catalog, Feature
from allotment.domain.catalog_document import CatalogDocument, build_catalog

__all__ = ("CatalogFact", "CatalogUpserted", "FeatureAutoCreated", "evolve_catalog")


class CatalogUpserted(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="catalog_upserted"):
    at: datetime
    document: CatalogDocument


class FeatureAutoCreated(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, tag="feature_auto_created"
):
    at: datetime
    feature: Feature


CatalogFact = CatalogUpserted | FeatureAutoCreated


def evolve_catalog(catalog: Catalog, fact: CatalogFact) -> Catalog:
    """Replay one catalog fact. The document was validated when it was accepted."""
    if isinstance(fact, FeatureAutoCreated):
        return catalog.with_feature(fact.feature)
    return build_catalog(fact.document, catalog, fact.at)
