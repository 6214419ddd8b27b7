"""checkEntitlement and evaluateEntitlement (ENT-1..ENT-34, SIM-1..SIM-8)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from litestar import Response, get, post
from litestar.params import FromPath

from allotment.http.check_answers import CheckAnswers
from allotment.http.context import (
    AnyRequest,
    check_answers_of,
    documents_body,
    errors,
    json_body,
    shard_of,
)
from allotment.http.errors import ENCODER, ApiError, encoded_response, json_response
from allotment.http.mapping.entitlements import entitlement_response
from allotment.http.schemas import ApiResponseEntitlementResponse, EntitlementEvaluationRequest
from allotment.http.validation import check_decimal, decode_body
from allotment.runtime.ports import Shard
from allotment.runtime.records import EvaluationContext

__all__ = ("check", "check_entitlement", "evaluate_entitlement")

_GET = EvaluationContext(method="GET")
_PATH_LENGTH_MAX = 255


@get(
    "/entitlements/{customerReferenceId:str}/{feature-key:str}",
    operation_id="checkEntitlement",
    opt={"platform": True},
    responses=errors(400, 401, 403),  # 400: over-long path ids
)
async def check_entitlement(
    request: AnyRequest, customerReferenceId: FromPath[str]
) -> Response[ApiResponseEntitlementResponse]:
    feature_key: str = request.path_params["feature-key"]
    shard, answers = shard_of(request), check_answers_of(request)
    return encoded_response(await check(shard, answers, customerReferenceId, feature_key))


async def check(
    shard: Shard, answers: CheckAnswers, customer_reference_id: str, feature_key: str
) -> bytes:
    """checkEntitlement's answer (ENT-26), encoded: shared by the route and the fast path. A
    repeat of the customer's last check gets the bytes made for it (http/check_answers.py)."""
    if len(customer_reference_id) > _PATH_LENGTH_MAX or len(feature_key) > _PATH_LENGTH_MAX:
        raise ApiError(400, f"Invalid path: identifiers are at most {_PATH_LENGTH_MAX} characters.")
    decision = await shard.evaluate(customer_reference_id, feature_key, None, _GET)
    answer = answers.get(customer_reference_id, feature_key, decision)
    if answer is None:
        data = entitlement_response(decision, customer_reference_id, feature_key, None)
        answer = ENCODER.encode(ApiResponseEntitlementResponse(success=True, data=data))
        answers.put(customer_reference_id, feature_key, decision, answer)
    return answer


@post(
    "/entitlements",
    operation_id="evaluateEntitlement",
    status_code=200,
    opt={"platform": True},
    dependencies=documents_body(EntitlementEvaluationRequest),
    responses=errors(400, 401, 403),
)
async def evaluate_entitlement(request: AnyRequest) -> Response[ApiResponseEntitlementResponse]:
    body = decode_body(await json_body(request), EntitlementEvaluationRequest)
    track, context = body.track, body.context
    requested: Decimal | None = None
    if track is not None:  # SIM-1, SIM-2: a track block always simulates, 1 unit by default
        units = track.usageUnits if track.usageUnits is not None else Decimal(1)
        requested = check_decimal("track.usageUnits", units, positive=True)  # ENT-3
    flow_id = (context.flowId if context else None) or str(uuid.uuid4())  # ENT-26, AMB-35
    audit = EvaluationContext(
        method="POST",
        event_name=track.eventName if track else None,
        meta=track.meta if track else None,
        flow_id=flow_id,
        idempotency_key=context.idempotencyKey if context else None,
    )
    decision = await shard_of(request).evaluate(
        body.customerReferenceId, body.featureKey, requested, audit
    )
    data = entitlement_response(decision, body.customerReferenceId, body.featureKey, flow_id)
    return json_response(ApiResponseEntitlementResponse(success=True, data=data))
