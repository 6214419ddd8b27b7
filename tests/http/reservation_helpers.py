"""A plan for reservation tests over HTTP: `ai_chat` draws 1 TOKENS credit a unit from a
hard-limited pool, `api_calls` is capped at 100 a period, `sso` is a boolean feature."""

from __future__ import annotations

from typing import Any

from tests.http.helpers import C, Client, create_customer, grant, plan_doc, put_catalog, subscribe

RSV_PLAN = plan_doc(
    "rsv_plan",
    features=[
        {"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0.01,
         "creditModelKey": "llm_tokens", "creditsPerUnit": 1},
        {"featureKey": "api_calls", "pricingType": "usage_based", "pricePerUnit": 0.001,
         "maxUsage": 100},
        {"featureKey": "sso", "pricingType": "included"},
    ],
)  # fmt: skip


def holder(client: Client, ref: str, tokens: float = 500) -> None:
    """A customer on RSV_PLAN with `tokens` in the hard-limited TOKENS pool."""
    put_catalog(client, RSV_PLAN)
    create_customer(client, ref)
    subscribe(client, ref, "rsv_plan")
    if tokens:
        assert grant(client, ref, tokens).status_code == 201


def reserve(client: Client, ref: str, **body: Any) -> Any:
    return client.post(f"{C}/reservations", json={"customerReferenceId": ref, **body})


def settle(client: Client, reservation_id: str, action: str, **body: Any) -> Any:
    return client.post(f"{C}/reservations/{reservation_id}/{action}", json=body)
