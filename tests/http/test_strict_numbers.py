"""Amounts and quantities are JSON numbers (API-8): a quoted number is a wrong type (API-10),
and the OpenAPI document says `number`, as tanso-openapi.json does."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from allotment.http.fast_path import FastPath
from tests.http.helpers import A, C, Client, paid_subscriber


@pytest.mark.parametrize("field", ["usageUnits", "costAmount", "revenueAmount"])
def test_api10_quoted_number_in_an_event_is_rejected_and_changes_nothing(
    client: Client, field: str
) -> None:
    paid_subscriber(client, "q1")
    body = {
        "eventName": "api_calls",
        "customerReferenceId": "q1",
        "eventIdempotencyKey": "k1",
        field: "5",
    }
    response = client.post(f"{C}/events", json=body)
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == f"Invalid field '{field}': Expected `number`, got `str`"
    )
    assert client.get(f"{C}/entitlements/q1/api_calls").json()["data"]["usage"]["used"] == 0
    del body[field]
    assert client.post(f"{C}/events", json=body).status_code == 201  # the key was not consumed


def test_api10_quoted_number_in_a_simulation_is_rejected(client: Client) -> None:
    body = {"customerReferenceId": "q1", "featureKey": "api_calls", "track": {"usageUnits": "2"}}
    response = client.post(f"{C}/entitlements", json=body)
    assert response.status_code == 400
    assert "track.usageUnits" in response.json()["error"]["message"]


def test_api10_quoted_amount_in_an_admin_grant_is_rejected(client: Client) -> None:
    paid_subscriber(client, "q2")
    body = {
        "customerReferenceId": "q2",
        "denomination": "TOKENS",
        "amount": "10",
        "source": "PROMOTION",
    }
    assert client.post(f"{A}/credits/grants", json=body).status_code == 400


def test_api8_openapi_documents_decimals_as_numbers(app: FastPath) -> None:
    with TestClient(app) as raw:  # the document is not an API envelope
        schemas = raw.get("/schema/openapi.json").json()["components"]["schemas"]
    assert schemas["EventRequest"]["properties"]["usageUnits"]["oneOf"][0]["type"] == "number"
    assert schemas["InvoiceDto"]["properties"]["amount"]["type"] == "number"
    assert schemas["CreditPoolDto"]["properties"]["balance"]["type"] == "number"
