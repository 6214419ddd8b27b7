"""End to end over real sockets: a server subprocess with Stripe on calls the double through
the SDK, and the double delivers the signed webhook to the server's webhook endpoint."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.payments.conftest import STRIPE_KEY, WEBHOOK_SECRET
from tests.reliability.server import KEY, Server
from tests.stripe_double import StripeDouble

C = "/api/v1/client"


def test_str6_checkout_completed_webhook_over_the_network_activates_the_subscription(
    tmp_path: Path,
) -> None:
    with StripeDouble(STRIPE_KEY, WEBHOOK_SECRET) as double:
        server = Server(
            tmp_path, "--stripe-api-base", double.url,
            env={"ALLOTMENT_STRIPE_SECRET_KEY": STRIPE_KEY, "ALLOTMENT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET},
        )  # fmt: skip
        try:
            double.webhook_url = f"{server.url}/api/v1/webhooks/stripe"
            api = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
            )
            api.post(
                f"{C}/customers",
                json={
                    "customerReferenceId": "net",
                    "firstName": "N",
                    "lastName": "E",
                    "email": "n@e.io",
                },
            )
            plans = api.get(f"{C}/plans").json()["data"]
            pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
            invoice = api.post(
                f"{C}/subscriptions", json={"customerReferenceId": "net", "planId": pro}
            ).json()["data"]["invoice"]
            url = api.post(f"{C}/billing/invoices/{invoice['id']}/stripe/checkout").json()["data"][
                "url"
            ]
            session_id = url.rsplit("/", 1)[-1]
            completed = httpx.post(f"{double.url}/_test/sessions/{session_id}/complete", timeout=10)
            assert completed.json() == {"webhook_status": 200}
            assert api.get(f"{C}/billing/invoices/net").json()["data"][0]["status"] == "PAID"
            assert api.get(f"{C}/entitlements/net/api_calls").json()["data"]["isAllowed"] is True
            customer = api.get(f"{C}/customers/net").json()["data"]
            assert customer["creditPools"][0]["totalGranted"] == 1_000_000
        finally:
            server.stop()
