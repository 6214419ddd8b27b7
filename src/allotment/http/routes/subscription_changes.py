"""cancelSubscription, revertScheduledCancellation, changeSubscriptionPlan and
cancelScheduledPlanChange (SUB-40..SUB-70)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, delete, post
from litestar.params import FromPath, QueryParameter

from allotment.domain.commands import (
    CancelScheduledChange,
    CancelSubscription,
    ChangePlan,
    RevertCancellation,
)
from allotment.domain.replies import Rejected
from allotment.domain.state import CancelMode, ChangeType
from allotment.http.context import AnyRequest, documents_body, errors, json_body, shard_of
from allotment.http.errors import ApiError, json_response, raise_rejection
from allotment.http.schemas import ApiResponseVoid, ClientChangeSubscriptionRequest
from allotment.http.validation import decode_body, parse_uuid

__all__ = (
    "cancel_scheduled_plan_change",
    "cancel_subscription",
    "change_plan",
    "revert_cancellation",
)

_NOT_FOUND = "Subscription not found."


@post(
    "/subscriptions/cancellation/{subscriptionId:str}",
    operation_id="cancelSubscription",
    status_code=200,
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),
)
async def cancel_subscription(
    request: AnyRequest,
    subscriptionId: FromPath[str],
    cancel_mode: Annotated[str | None, QueryParameter(name="cancelMode", required=False)] = None,
) -> Response[ApiResponseVoid]:
    sid = parse_uuid("subscriptionId", subscriptionId)  # SUB-40: 400 before any lookup
    try:
        mode = CancelMode(cancel_mode) if cancel_mode is not None else CancelMode.END_OF_PERIOD
    except ValueError:
        raise ApiError(400, "Invalid query 'cancelMode': IMMEDIATE or END_OF_PERIOD.") from None
    return await _send(request, CancelSubscription(subscription_id=sid, mode=mode))


@delete(
    "/subscriptions/cancellation/{subscriptionId:str}/scheduled",
    operation_id="revertScheduledCancellation",
    status_code=200,
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),
)
async def revert_cancellation(
    request: AnyRequest, subscriptionId: FromPath[str]
) -> Response[ApiResponseVoid]:
    sid = parse_uuid("subscriptionId", subscriptionId)
    return await _send(request, RevertCancellation(subscription_id=sid))


@post(
    "/subscriptions/{subscriptionId:str}/plan-change",
    operation_id="changeSubscriptionPlan",
    status_code=200,
    opt={"platform": True},
    dependencies=documents_body(ClientChangeSubscriptionRequest),
    responses=errors(400, 401, 403, 404),
)
async def change_plan(
    request: AnyRequest, subscriptionId: FromPath[str]
) -> Response[ApiResponseVoid]:
    sid = parse_uuid("subscriptionId", subscriptionId)
    body = decode_body(await json_body(request), ClientChangeSubscriptionRequest)
    command = ChangePlan(
        subscription_id=sid, to_plan_id=body.changeToPlanId, change_type=ChangeType(body.changeType)
    )
    return await _send(request, command)


@delete(
    "/subscriptions/{subscriptionId:str}/plan-change/scheduled",
    operation_id="cancelScheduledPlanChange",
    status_code=200,
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),
)
async def cancel_scheduled_plan_change(
    request: AnyRequest, subscriptionId: FromPath[str]
) -> Response[ApiResponseVoid]:
    sid = parse_uuid("subscriptionId", subscriptionId)
    return await _send(request, CancelScheduledChange(subscription_id=sid))


SubscriptionCommand = CancelSubscription | RevertCancellation | ChangePlan | CancelScheduledChange


async def _send(request: AnyRequest, command: SubscriptionCommand) -> Response[ApiResponseVoid]:
    reply = await shard_of(request).command_on_owner(command.subscription_id, command, _NOT_FOUND)
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    return json_response(ApiResponseVoid())
