"""Customers on the wire, and getCustomer (CUS-11..CUS-14)."""

from __future__ import annotations

from datetime import datetime

from allotment.domain.catalog import Catalog
from allotment.domain.money import ZERO
from allotment.domain.state import CustomerState
from allotment.http.mapping.credits import pool_dto, visible_pools
from allotment.http.mapping.subscriptions import subscription_dto
from allotment.http.schemas import CustomerClientResponse, CustomerDto

__all__ = ("customer_dto", "project_customer")


def customer_dto(state: CustomerState) -> CustomerDto:
    p = state.profile
    return CustomerDto(
        id=state.id,
        externalClientCustomerId=state.external_id,
        firstName=p.first_name,
        lastName=p.last_name,
        email=p.email,
        phoneNumber=p.phone_number,
        createdAt=state.created_at,
        modifiedAt=state.modified_at,
    )


def project_customer(
    state: CustomerState, catalog: Catalog, now: datetime
) -> CustomerClientResponse:
    """getCustomer (CUS-11..CUS-14)."""
    del now
    pools = visible_pools(state)
    p = state.profile
    return CustomerClientResponse(
        externalClientCustomerId=state.external_id,
        firstName=p.first_name,
        lastName=p.last_name,
        email=p.email,
        createdAt=state.created_at,
        modifiedAt=state.modified_at,
        subscriptions=[subscription_dto(s, catalog) for s in state.live_subscriptions()],
        creditPools=[
            pool_dto(pool, reserved=state.held_credits.get(pool.denomination, ZERO))
            for pool in pools
        ]
        or None,
    )
