"""The credit pools read side (CRD-50, CRD-51)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.params import FromPath, QueryParameter

from allotment.http.context import AnyRequest, errors, shard_of
from allotment.http.errors import ApiError, json_response
from allotment.http.mapping.credits import pools_projector
from allotment.http.schemas import ApiResponseCreditPoolList
from allotment.runtime.ports import CustomerLookup

__all__ = ("list_credit_pools",)

_EXPANSIONS = frozenset({"grants", "transactions"})


@get(
    "/credits/{externalClientCustomerId:str}/pools",
    operation_id="listCreditPools",
    opt={"platform": True},
    responses=errors(400, 401, 403, 404),
)
async def list_credit_pools(
    request: AnyRequest,
    externalClientCustomerId: FromPath[str],
    expand: Annotated[
        str | None,
        QueryParameter(
            name="expand",
            required=False,
            description=(
                "Extension: comma-separated `grants` (burn-down order) and `transactions` (ledger)"
            ),
        ),
    ] = None,
) -> Response[ApiResponseCreditPoolList]:
    wanted = {part.strip() for part in expand.split(",")} - {""} if expand else set()
    if wanted - _EXPANSIONS:
        raise ApiError(400, "Invalid query 'expand': allowed values are grants, transactions.")
    projector = pools_projector(grants="grants" in wanted, transactions="transactions" in wanted)
    data = await shard_of(request).read(
        CustomerLookup(external_id=externalClientCustomerId), projector
    )
    if data is None:
        raise ApiError(404, "Customer not found.")
    return json_response(ApiResponseCreditPoolList(success=True, data=data))
