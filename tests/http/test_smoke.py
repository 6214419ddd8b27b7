"""The billing guide's happy path end to end (tanso-billing-guide.txt steps 1-6)."""

from __future__ import annotations

from tests.http.helpers import C, Client, check, create_customer, event, plan_id


def test_guide_flow_subscribe_pay_check_ingest_simulate_pools(client: Client) -> None:
    """SUB-17, INV-20, ENT-12, EVT-42, SIM-1, CRD-51."""
    create_customer(client, "user_456")
    sub = client.post(
        f"{C}/subscriptions",
        json={
            "customerReferenceId": "user_456",
            "planId": plan_id(client, "pro_monthly"),
            "gracePeriod": 3,
        },
    )
    assert sub.status_code == 201
    invoice = sub.json()["data"]["invoice"]
    assert invoice["status"] == "DUE" and float(invoice["amount"]) == 49.0
    assert check(client, "user_456", "api_calls")["isAllowed"] is False
    assert client.post(f"{C}/billing/invoices/{invoice['id']}/mark-paid").json() == {
        "success": True
    }
    assert check(client, "user_456", "api_calls")["isAllowed"] is True
    assert event(client, "user_456", "e1", usageUnits=10).status_code == 201
    assert check(client, "user_456", "api_calls")["usage"]["used"] == 10
    sim = client.post(
        f"{C}/entitlements",
        json={
            "customerReferenceId": "user_456",
            "featureKey": "ai_chat",
            "track": {"usageUnits": 5000},
        },
    ).json()["data"]
    assert sim["simulation"]["wouldExceedLimit"] is False
    pools = client.get(f"{C}/credits/user_456/pools").json()["data"]
    assert [p["denomination"] for p in pools] == ["TOKENS"]
