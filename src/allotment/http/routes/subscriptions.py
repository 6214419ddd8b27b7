"""createSubscription (SUB-10..SUB-20)."""

from __future__ import annotations

from litestar import Response, post

from allotment.domain.commands import Subscribe
from allotment.domain.replies import Rejected, Subscribed
from allotment.http.context import AnyRequest, documents_body, errors, json_body, shard_of
from allotment.http.errors import json_response, raise_rejection
from allotment.http.mapping.customers import customer_dto
from allotment.http.mapping.invoices import invoice_dto
from allotment.http.mapping.subscriptions import subscription_dto
from allotment.http.schemas import (
    ApiResponseSubscribedCustomerResponse,
    ClientSubscriptionRequest,
    SubscribedCustomerResponse,
)
from allotment.http.validation import decode_body
from allotment.runtime.ports import CustomerLookup

__all__ = ("create_subscription",)

DEFAULT_GRACE_PERIOD_DAYS = 3  # SUB-12


@post(
    "/subscriptions",
    operation_id="createSubscription",
    status_code=201,
    opt={"platform": True},
    dependencies=documents_body(ClientSubscriptionRequest),
    responses=errors(400, 401, 403, 404, 409),
)
async def create_subscription(
    request: AnyRequest,
) -> Response[ApiResponseSubscribedCustomerResponse]:
    body = decode_body(await json_body(request), ClientSubscriptionRequest)
    grace = body.gracePeriod if body.gracePeriod is not None else DEFAULT_GRACE_PERIOD_DAYS
    shard = shard_of(request)
    reply = await shard.command(
        CustomerLookup(external_id=body.customerReferenceId),
        Subscribe(plan_id=body.planId, grace_period_days=grace),
    )
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    assert isinstance(reply, Subscribed)
    customer = await shard.read(
        CustomerLookup(external_id=body.customerReferenceId),
        lambda state, _c, _n: customer_dto(state),
    )
    catalog = shard.catalog
    sub_dto = subscription_dto(reply.subscription, catalog, customer)
    data = SubscribedCustomerResponse(
        subscription=sub_dto,
        invoice=invoice_dto(reply.invoice, subscription_dto(reply.subscription, catalog)),
    )
    return json_response(ApiResponseSubscribedCustomerResponse(success=True, data=data), 201)
