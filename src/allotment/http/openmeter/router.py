"""The OpenMeter router: every OpenMeter operation allotment serves, under `/api/v1`, with
problem+json for every failure on its paths (`problems.py`). Both halves of issue 16 add
their routes to `ROUTES`."""

from __future__ import annotations

from litestar import Router

from allotment.http.openmeter import (
    customers,
    entitlement_history,
    entitlement_lists,
    entitlement_values,
    entitlements,
    event_list,
    events,
    features,
    grants,
    meter_queries,
    meters,
    notifications_channels,
    notifications_events,
    notifications_rules,
)
from allotment.http.openmeter.problems import exception_handlers

__all__ = ("ROUTES", "V2_ROUTES", "openmeter_router", "openmeter_v2_router")

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
    # om-read: queries and listing (docs/openmeter.md, OM-40..)
    event_list.list_events,
    meter_queries.query_meter,
    meter_queries.query_meter_post,
    meter_queries.list_subjects,
    meter_queries.list_group_by_values,
    # omh-ent: entitlements (issue 17, OM-107..OM-119)
    *entitlements.V1_ROUTES,
    entitlement_lists.list_v1,
    entitlement_lists.get_v1,
    # omh-value: the value, access and history (issue 17, OM-130..)
    entitlement_values.get_customer_entitlement_value,
    entitlement_values.get_subject_entitlement_value,
    entitlement_values.get_customer_access,
    entitlement_history.get_subject_entitlement_history,
    # omh-grant: grants (docs/openmeter.md OM-120..OM-129)
    grants.create_grant,
    grants.list_entitlement_grants,
    grants.list_grants,
    grants.void_grant,
    # omh-notify: notifications (docs/openmeter.md, OM-140..OM-149)
    notifications_channels.list_channels,
    notifications_channels.create_channel,
    notifications_channels.get_channel,
    notifications_channels.update_channel,
    notifications_channels.delete_channel,
    notifications_rules.list_rules,
    notifications_rules.create_rule,
    notifications_rules.get_rule,
    notifications_rules.update_rule,
    notifications_rules.delete_rule_route,
    notifications_events.test_rule,
    notifications_events.list_events,
    notifications_events.get_event,
    notifications_events.resend_event,
]

V2_ROUTES = [
    event_list.list_events_v2,
    # omh-ent: entitlements (issue 17, OM-107..OM-119)
    *entitlements.V2_ROUTES,
    entitlement_lists.list_v2,
    entitlement_lists.get_v2,
    # omh-value: the value and history (issue 17, OM-130..)
    entitlement_values.get_customer_entitlement_value_v2,
    entitlement_history.get_customer_entitlement_history_v2,
    # omh-grant: grants (OM-120..OM-129)
    grants.create_grant_v2,
    grants.list_entitlement_grants_v2,
    grants.list_grants_v2,
]


def openmeter_router() -> Router:
    """A new router per app, as Litestar registers routes on it."""
    return Router(
        "/api/v1",
        route_handlers=ROUTES,
        tags=["OpenMeter"],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
    )


def openmeter_v2_router() -> Router:
    """The OpenMeter operations under `/api/v2` allotment serves: the event listing, the
    customers' entitlements and their grants."""
    return Router(
        "/api/v2",
        route_handlers=V2_ROUTES,
        tags=["OpenMeter"],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
    )
