"""The OpenMeter router: every OpenMeter operation allotment serves, under `/api/v1`, with
problem+json for every failure on its paths (`problems.py`). Both halves of issue 16 add
their routes to `ROUTES`."""

from __future__ import annotations

from litestar import Router

from allotment.http.openmeter import customers, events, features, meters
from allotment.http.openmeter.problems import exception_handlers

__all__ = ("ROUTES", "openmeter_router")

ROUTES = [
    events.ingest_events,
    meters.list_meters,
    meters.create_meter,
    meters.get_meter,
    meters.update_meter_route,
    meters.delete_meter_route,
    features.list_features,
    features.create_feature,
    features.get_feature,
    features.delete_feature,
    customers.list_customers,
    customers.create_customer,
    customers.get_customer,
    customers.update_customer,
    customers.delete_customer,
]


def openmeter_router() -> Router:
    """A new router per app, as Litestar registers routes on it."""
    return Router(
        "/api/v1",
        route_handlers=ROUTES,
        tags=["OpenMeter"],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
    )
