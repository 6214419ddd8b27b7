"""Tanso plans' read-only views in the entitlement routes' JSON (OM-150..OM-157): what the
listings and gets add to the customer's native entitlements. The views are computed from the
state and the catalog (domain/om_views.py) and rendered by `entitlement_json`, like native
ones; their `metadata` marks them (`allotment.source` = `tanso`, `allotment.readOnly`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from allotment.domain.catalog import Catalog
from allotment.domain.om_views import as_entitlement, derived_entitlements, resolve_derived
from allotment.domain.state import CustomerState
from allotment.http.openmeter.entitlement_wire import entitlement_json

__all__ = ("derived_json", "one_derived_json")


def derived_json(
    state: CustomerState, catalog: Catalog, now: datetime, *, v2: bool
) -> list[dict[str, Any]]:
    """The visible views of the customer's subscriptions (OM-150, OM-154)."""
    return [
        entitlement_json(state, as_entitlement(view), now, v2=v2)
        for view in derived_entitlements(state, catalog)
    ]


def one_derived_json(
    state: CustomerState, catalog: Catalog, id_or_feature_key: str, now: datetime, *, v2: bool
) -> dict[str, Any] | None:
    """A visible view by derived id or feature key, or None (OM-151)."""
    view = resolve_derived(state, catalog, id_or_feature_key)
    return None if view is None else entitlement_json(state, as_entitlement(view), now, v2=v2)
