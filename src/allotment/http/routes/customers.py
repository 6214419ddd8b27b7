"""createCustomer and getCustomer (CUS-1..CUS-14)."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.params import FromPath

from allotment.domain.reference_ids import reference_id_problem
from allotment.domain.replies import Rejected
from allotment.domain.state import Profile
from allotment.http.context import AnyRequest, documents_body, errors, json_body, shard_of
from allotment.http.errors import ApiError, json_response, raise_rejection
from allotment.http.mapping.customers import project_customer
from allotment.http.schemas import (
    ApiResponseCustomerClientResponse,
    ApiResponseVoid,
    CustomerRequest,
)
from allotment.http.validation import decode_body
from allotment.runtime.ports import CustomerLookup

__all__ = ("create_customer", "get_customer")

CUSTOMER_NOT_FOUND = "Customer not found."


def _external_id(body: CustomerRequest) -> str:
    """CUS-2: `externalClientCustomerId` or its alias `customerReferenceId`, exactly one value."""
    a, b = body.externalClientCustomerId, body.customerReferenceId
    if a is None and b is None:
        raise ApiError(
            400, "Invalid field 'externalClientCustomerId': required (or customerReferenceId)."
        )
    if a is not None and b is not None and a != b:
        raise ApiError(
            400, "Invalid field 'customerReferenceId': conflicts with externalClientCustomerId."
        )
    field, value = ("externalClientCustomerId", a) if a is not None else ("customerReferenceId", b)
    assert value is not None
    problem = reference_id_problem(value)  # OPS-K11: checked where customers are created
    if problem is not None:
        raise ApiError(400, f"Invalid field '{field}': {problem}.")
    return value


@post(
    "/customers",
    operation_id="createCustomer",
    status_code=201,
    dependencies=documents_body(CustomerRequest),
    responses=errors(400, 401, 403, 409),
)
async def create_customer(request: AnyRequest) -> Response[ApiResponseVoid]:
    body = decode_body(await json_body(request), CustomerRequest)
    profile = Profile(
        first_name=body.firstName,
        last_name=body.lastName,
        email=body.email,
        phone_number=body.phoneNumber,
        address=body.address,
    )
    reply = await shard_of(request).create_customer(_external_id(body), profile)
    if isinstance(reply, Rejected):
        raise_rejection(reply)
    return json_response(ApiResponseVoid(), 201)


@get(
    "/customers/{externalClientCustomerId:str}",
    operation_id="getCustomer",
    responses=errors(400, 401, 403, 404),  # 400 declared, or Litestar documents its own shape
)
async def get_customer(
    request: AnyRequest, externalClientCustomerId: FromPath[str]
) -> Response[ApiResponseCustomerClientResponse]:
    lookup = CustomerLookup(external_id=externalClientCustomerId)
    data = await shard_of(request).read(lookup, project_customer)
    if data is None:
        raise ApiError(404, CUSTOMER_NOT_FOUND)
    return json_response(ApiResponseCustomerClientResponse(success=True, data=data))
