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


def test_every_payment_accounted_for_over_the_network_and_after_a_crash(tmp_path: Path) -> None:
    """MNY-C2..MNY-C4 over real sockets, the real SDK on the server's side: a delayed payment
    that fails, then one that succeeds; a paid session naming no invoice of the environment is
    answered 200 and kept; after SIGKILL and a restart, the kept payment is still listed
    (journalled as an environment fact before the 200)."""
    env = {
        "ALLOTMENT_STRIPE_SECRET_KEY": STRIPE_KEY,
        "ALLOTMENT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    with StripeDouble(STRIPE_KEY, WEBHOOK_SECRET) as double:
        server = Server(tmp_path, "--stripe-api-base", double.url, env=env)
        try:
            double.webhook_url = f"{server.url}/api/v1/webhooks/stripe"
            api = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
            )
            customer = {"customerReferenceId": "debit", "firstName": "D", "lastName": "E",
                        "email": "d@e.io"}  # fmt: skip
            assert api.post(f"{C}/customers", json=customer).status_code == 201
            plans = api.get(f"{C}/plans").json()["data"]
            pro = next(p["plan"]["id"] for p in plans if p["plan"]["key"] == "pro_monthly")
            invoice = api.post(
                f"{C}/subscriptions", json={"customerReferenceId": "debit", "planId": pro}
            ).json()["data"]["invoice"]
            checkout = f"{C}/billing/invoices/{invoice['id']}/stripe/checkout"

            def session() -> str:
                url: str = api.post(checkout).json()["data"]["url"]
                return url.rsplit("/", 1)[-1]

            def test_route(path: str) -> int:
                answer = httpx.post(f"{double.url}/_test/sessions/{path}", timeout=10).json()
                status: int = answer["webhook_status"]
                return status

            first = session()
            assert test_route(f"{first}/complete_unpaid") == 200
            assert test_route(f"{first}/async_fail") == 200
            assert api.get(f"{C}/billing/invoices/debit").json()["data"][0]["status"] == "DUE"
            second = session()
            assert second != first
            assert test_route(f"{second}/complete_unpaid") == 200
            assert test_route(f"{second}/async_succeed") == 200
            assert api.get(f"{C}/billing/invoices/debit").json()["data"][0]["status"] == "PAID"
            assert double.pay_elsewhere({"invoice_id": "nonsense"}, amount_total=700) == 200
            server.kill()
            server = Server(tmp_path, "--stripe-api-base", double.url, env=env)
            api = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10
            )
            (kept,) = api.get("/api/v1/admin/unapplied-payments").json()["data"]
            assert (kept["amountMinor"], kept["currency"], kept["invoiceReference"]) == (
                700,
                "USD",
                "nonsense",
            )
            assert api.get(f"{C}/billing/invoices/debit").json()["data"][0]["status"] == "PAID"
        finally:
            server.stop()
