"""listPlans (PLN-1..PLN-9)."""

from __future__ import annotations

from litestar import Response, get

from allotment.http.catalog_document import CATALOG_ENCODER
from allotment.http.context import AnyRequest, errors, shard_of
from allotment.http.errors import encoded_response
from allotment.http.mapping.plans import client_plans
from allotment.http.schemas import ApiResponsePlanList

__all__ = ("list_plans",)


@get("/plans", operation_id="listPlans", opt={"platform": True}, responses=errors(401, 403))
async def list_plans(request: AnyRequest) -> Response[ApiResponsePlanList]:
    plans = client_plans(shard_of(request).catalog)
    body = CATALOG_ENCODER.encode(ApiResponsePlanList(success=True, data=plans))  # "inf" tiers
    response: Response[ApiResponsePlanList] = encoded_response(body)
    return response
