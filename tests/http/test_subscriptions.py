"""createSubscription, markInvoicePaid and listCustomerInvoices (SUB-4, SUB-10..SUB-19,
INV-4, INV-5, INV-12..INV-14, INV-20..INV-28, STR-1)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import KEY, START
from tests.http.conftest import check_envelope
from tests.http.helpers import (
    C,
    Client,
    advance,
    check,
    create_customer,
    error,
    get_customer,
    invoices,
    mark_paid,
    ok,
    paid_subscriber,
    plan_doc,
    plan_id,
    pool,
    put_catalog,
    subscribe,
)

NIL = "00000000-0000-0000-0000-000000000000"
NOT_PAYABLE = "Invoice is not payable in its current state."


def money(value: Any) -> Decimal:
    """INV-44: amounts compare numerically."""
    return Decimal(str(value))


def post_subscription(client: Client, **body: Any) -> Any:
    return client.post(f"{C}/subscriptions", json=body)


def credit_plans(client: Client) -> None:
    """A free in-advance plan and a $10 in-arrears plan, each with 500 TOKENS."""
    allocation = [{"creditModelKey": "llm_tokens", "creditAmount": 500}]
    chat = [{"featureKey": "ai_chat", "pricingType": "usage_based", "pricePerUnit": 0,
             "creditModelKey": "llm_tokens"}]  # fmt: skip
    put_catalog(
        client,
        plan_doc("free_credits", billingTiming="IN_ADVANCE", features=chat,
                 creditAllocations=allocation),
        plan_doc("arrears_ten", priceAmount=10, features=chat, creditAllocations=allocation),
    )  # fmt: skip


# -- createSubscription: validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"planId": None}, "planId"),
        ({"customerReferenceId": None}, "customerReferenceId"),
        ({"planId": "not-a-uuid"}, "planId"),
        ({"gracePeriod": -1}, "gracePeriod"),
        ({"gracePeriod": 1.5}, "gracePeriod"),
        ({"gracePeriod": "3"}, "gracePeriod"),
        ({"customerReferenceId": ""}, "customerReferenceId"),
    ],
)
def test_sub10_invalid_request_is_400_naming_the_field(
    client: Client, patch: dict[str, Any], field: str
) -> None:
    """SUB-10, API-10: missing fields, malformed ids, negative or non-integer grace -> 400."""
    create_customer(client, "val")
    body = {"customerReferenceId": "val", "planId": plan_id(client, "free"), **patch}
    body = {k: v for k, v in body.items() if v is not None}
    assert field in error(post_subscription(client, **body), 400)
    assert get_customer(client, "val")["subscriptions"] == []


def test_sub11_unknown_customer_is_404_and_not_auto_created(client: Client) -> None:
    """SUB-11: subscribing never auto-creates a customer."""
    response = post_subscription(
        client, customerReferenceId="ghost", planId=plan_id(client, "free")
    )
    assert error(response, 404) == "Customer not found."
    assert error(client.get(f"{C}/customers/ghost"), 404) == "Customer not found."


@pytest.mark.parametrize("status", ["DRAFT", "ARCHIVED", None])
def test_sub11_unknown_or_inactive_plan_is_404(client: Client, status: str | None) -> None:
    """SUB-11: an unknown plan id, or a plan that is not ACTIVE -> 404 "Plan not found."."""
    create_customer(client, "np")
    if status is None:
        target = NIL
    else:
        catalog = put_catalog(client, plan_doc("inactive", status=status))
        target = next(p["id"] for p in catalog["plans"] if p["key"] == "inactive")
    response = post_subscription(client, customerReferenceId="np", planId=target)
    assert error(response, 404) == "Plan not found."
    assert invoices(client, "np") == []


def test_sub4_second_live_subscription_to_the_same_plan_is_409(client: Client) -> None:
    """SUB-4: several plans are fine; the same plan twice while live -> 409, nothing created."""
    create_customer(client, "twice")
    subscribe(client, "twice", "pro_monthly")
    subscribe(client, "twice", "free")
    again = post_subscription(client, customerReferenceId="twice",
                              planId=plan_id(client, "pro_monthly"))  # fmt: skip
    assert error(again, 409) == "Customer already has a live subscription to this plan."
    assert len(get_customer(client, "twice")["subscriptions"]) == 2
    assert len(invoices(client, "twice")) == 2


# -- createSubscription: results -----------------------------------------------------------------


def test_sub12_grace_period_defaults_to_3(client: Client) -> None:
    """SUB-12: gracePeriodDays = gracePeriod when given, otherwise 3."""
    create_customer(client, "grace")
    assert subscribe(client, "grace", "free")["subscription"]["gracePeriodDays"] == 3
    assert (
        subscribe(client, "grace", "pro_monthly", gracePeriod=0)["subscription"]["gracePeriodDays"]
        == 0
    )
    assert (
        subscribe(client, "grace", "usage_monthly", gracePeriod=14)["subscription"][
            "gracePeriodDays"
        ]
        == 14
    )


def test_sub13_sub14_period_of_the_example(client: Client) -> None:
    """SUB-13, SUB-14: start at 00:00Z of the creation day, end one month later on the anchor
    day; intervalMonths is the string "1" on the subscription."""
    create_customer(client, "period")
    sub = subscribe(client, "period", "pro_monthly")["subscription"]
    assert sub["currentPeriodStart"] == "2025-01-15T00:00:00Z"
    assert sub["currentPeriodEnd"] == "2025-02-15T00:00:00Z"
    assert sub["billingAnchorDay"] == 15
    assert sub["intervalMonths"] == "1"
    assert sub["plan"]["intervalMonths"] == "1"


@pytest.mark.parametrize(
    ("now", "interval", "start", "end", "anchor"),
    [
        ("2025-01-31T23:59:59Z", 1, "2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z", 31),
        ("2028-01-31T08:00:00Z", 1, "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", 31),
        ("2025-03-31T00:00:00Z", 1, "2025-03-31T00:00:00Z", "2025-04-30T00:00:00Z", 31),
        ("2025-01-15T10:30:00Z", 3, "2025-01-15T00:00:00Z", "2025-04-15T00:00:00Z", 15),
        ("2025-11-30T12:00:00Z", 3, "2025-11-30T00:00:00Z", "2026-02-28T00:00:00Z", 30),
        ("2025-02-01T00:00:00Z", 12, "2025-02-01T00:00:00Z", "2026-02-01T00:00:00Z", 1),
    ],
)
def test_sub13_month_arithmetic_clamps_to_month_end(
    client: Client, now: str, interval: int, start: str, end: str, anchor: int
) -> None:
    """SUB-13: anchor day clamped to the month's last day; any interval in months."""
    put_catalog(client, plan_doc(f"every_{interval}", intervalMonths=interval))
    if now != "2025-01-15T10:30:00Z":
        advance(client, to=now)
    create_customer(client, "clamp")
    sub = subscribe(client, "clamp", f"every_{interval}")["subscription"]
    assert (sub["currentPeriodStart"], sub["currentPeriodEnd"]) == (start, end)
    assert sub["billingAnchorDay"] == anchor
    assert sub["intervalMonths"] == str(interval)


def test_sub15_sub16_response_carries_subscription_and_initial_invoice(client: Client) -> None:
    """SUB-15, SUB-16, INV-4: 201 with `subscription` (plan and customer) and `invoice`
    (no items), and the invoice is the customer's one invoice."""
    create_customer(client, "shape")
    response = post_subscription(client, customerReferenceId="shape",
                                 planId=plan_id(client, "pro_monthly"), gracePeriod=3)  # fmt: skip
    data = ok(response, 201)
    assert set(data) <= {"subscription", "invoice", "metadata"}
    sub, invoice = data["subscription"], data["invoice"]
    assert sub["customer"]["externalClientCustomerId"] == "shape"
    assert sub["customer"]["email"] == "jane@example.com"
    assert sub["plan"]["key"] == "pro_monthly"
    assert sub["plan"]["status"] == "ACTIVE"
    assert sub["plan"]["priceAmount"] == 49
    assert "items" not in invoice
    assert invoice["metadata"] == {
        "invoiceType": "INITIAL",
        "periodStart": "2025-01-15T00:00:00Z",
        "periodEnd": "2025-02-15T00:00:00Z",
    }
    (listed,) = invoices(client, "shape")
    assert listed["id"] == invoice["id"]
    assert listed["subscription"]["id"] == sub["id"]


def test_sub17_paid_in_advance_waits_for_payment(client: Client) -> None:
    """SUB-17, ENT-12, checklist 7: DUE invoice for the price, due at the period start;
    isActive false; no entitlements and no credits until paid."""
    create_customer(client, "adv")
    data = subscribe(client, "adv", "pro_monthly")
    sub, invoice = data["subscription"], data["invoice"]
    assert sub["isActive"] is False
    assert invoice["status"] == "DUE"
    assert money(invoice["amount"]) == Decimal("49.00")
    assert invoice["currency"] == "USD"
    assert invoice["dueDate"] == sub["currentPeriodStart"] == "2025-01-15T00:00:00Z"
    denied = check(client, "adv", "projects")
    assert denied["isAllowed"] is False
    assert denied["meta"]["reason"]["description"] == "Subscription is awaiting payment."
    customer = get_customer(client, "adv")
    assert "creditPools" not in customer
    assert customer["subscriptions"][0]["isActive"] is False


def test_sub18_free_in_advance_is_paid_and_active_at_once(client: Client) -> None:
    """SUB-18, checklist 8: amount 0, PAID at creation, active, entitled, credits granted."""
    credit_plans(client)
    create_customer(client, "free")
    data = subscribe(client, "free", "free_credits")
    assert data["subscription"]["isActive"] is True
    assert data["invoice"]["status"] == "PAID"
    assert money(data["invoice"]["amount"]) == 0
    assert check(client, "free", "ai_chat")["isAllowed"] is True
    tokens = pool(client, "free")
    assert tokens["balance"] == 500
    assert tokens["totalGranted"] == 500


def test_sub19_in_arrears_is_active_with_a_pending_invoice(client: Client) -> None:
    """SUB-19, checklist 9: active at once; PENDING invoice for the price, due at the period
    end; plan credits granted at once."""
    credit_plans(client)
    create_customer(client, "arr")
    data = subscribe(client, "arr", "arrears_ten")
    sub, invoice = data["subscription"], data["invoice"]
    assert sub["isActive"] is True
    assert invoice["status"] == "PENDING"
    assert money(invoice["amount"]) == 10
    assert invoice["dueDate"] == sub["currentPeriodEnd"] == "2025-02-15T00:00:00Z"
    assert check(client, "arr", "ai_chat")["isAllowed"] is True
    assert pool(client, "arr")["balance"] == 500


def test_sub19_free_in_arrears_pending_zero(client: Client) -> None:
    """SUB-19: a free in-arrears plan is also active with a PENDING invoice of 0."""
    create_customer(client, "payg")
    data = subscribe(client, "payg", "usage_monthly")
    assert data["subscription"]["isActive"] is True
    assert data["invoice"]["status"] == "PENDING"
    assert money(data["invoice"]["amount"]) == 0


@pytest.fixture
def terms_client(settings: Settings, keys: KeyStore) -> Iterator[TestClient[FastPath]]:
    """A server whose account has paymentTermsDays = 3 (INV-5)."""
    terms = msgspec.structs.replace(settings, payment_terms_days=3)
    app = create_app(terms, build_system(terms, ManualClock(START), persistent=False), keys)
    with TestClient(app, base_url="http://testserver.local") as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        test_client.event_hooks["response"].append(check_envelope)
        yield test_client


def test_inv5_payment_terms_shift_the_in_advance_due_date(terms_client: Client) -> None:
    """INV-5: paymentTermsDays = 3 reproduces the example (start 01-15, due 01-18); in-arrears
    invoices stay due at the period end."""
    create_customer(terms_client, "terms")
    assert subscribe(terms_client, "terms", "pro_monthly")["invoice"]["dueDate"] == (
        "2025-01-18T00:00:00Z"
    )
    assert subscribe(terms_client, "terms", "usage_monthly")["invoice"]["dueDate"] == (
        "2025-02-15T00:00:00Z"
    )


# -- grace and PAST_DUE for the initial invoice --------------------------------------------------


def test_inv12_inv14_unpaid_initial_invoice_goes_past_due_after_grace(client: Client) -> None:
    """INV-12, INV-14, SUB-3: at dueDate + grace the DUE initial invoice becomes PAST_DUE; the
    subscription stays without access (awaiting payment); paying it activates."""
    create_customer(client, "late")
    invoice_id = subscribe(client, "late", "pro_monthly")["invoice"]["id"]
    advance(client, to="2025-01-17T23:59:59Z")
    assert invoices(client, "late")[0]["status"] == "DUE"
    advance(client, to="2025-01-18T00:00:00Z")
    (invoice,) = invoices(client, "late")
    assert invoice["status"] == "PAST_DUE"
    assert invoice["subscription"]["isActive"] is False
    reason = check(client, "late", "projects")["meta"]["reason"]["description"]
    assert reason == "Subscription is awaiting payment."
    assert ok(mark_paid(client, invoice_id)) is None
    (invoice,) = invoices(client, "late")
    assert invoice["status"] == "PAID"
    assert invoice["subscription"]["isActive"] is True
    assert check(client, "late", "projects")["isAllowed"] is True
    assert pool(client, "late")["totalGranted"] == 1_000_000


def test_inv13_zero_grace_loses_access_at_the_due_date(client: Client) -> None:
    """INV-13: with gracePeriod 0 the invoice is PAST_DUE as soon as now >= dueDate (the period
    start, already passed at 10:30)."""
    create_customer(client, "nograce")
    subscribe(client, "nograce", "pro_monthly", gracePeriod=0)
    assert invoices(client, "nograce")[0]["status"] == "PAST_DUE"


# -- markInvoicePaid ---------------------------------------------------------------------------


def test_inv20_mark_paid_activates_entitles_and_grants(client: Client) -> None:
    """INV-20, checklist 7: DUE -> PAID, subscription ACTIVE, entitlements and plan credits."""
    create_customer(client, "payer")
    data = subscribe(client, "payer", "pro_monthly")
    advance(client, seconds=600)
    response = mark_paid(client, data["invoice"]["id"])
    assert response.status_code == 200
    assert response.json() == {"success": True}
    (invoice,) = invoices(client, "payer")
    assert invoice["status"] == "PAID"
    assert invoice["modifiedAt"] == "2025-01-15T10:40:00Z"
    assert invoice["createdAt"] == "2025-01-15T10:30:00Z"
    assert get_customer(client, "payer")["subscriptions"][0]["isActive"] is True
    allowed = check(client, "payer", "api_calls")
    assert allowed["isAllowed"] is True
    assert allowed["usage"] == {"used": 0, "limit": 100000, "remaining": 100000}
    tokens = pool(client, "payer")
    assert tokens["balance"] == tokens["totalGranted"] == 1_000_000


def test_inv21_mark_paid_twice_grants_credits_once(client: Client) -> None:
    """INV-21, CRD-12, checklist 12: a second mark-paid is a 200 no-op with no second grant."""
    create_customer(client, "twice_paid")
    invoice_id = subscribe(client, "twice_paid", "pro_monthly")["invoice"]["id"]
    assert mark_paid(client, invoice_id).json() == {"success": True}
    advance(client, seconds=60)
    again = mark_paid(client, invoice_id)
    assert again.status_code == 200
    assert again.json() == {"success": True}
    tokens = pool(client, "twice_paid", expand="transactions")
    assert tokens["totalGranted"] == 1_000_000
    assert [t["type"] for t in tokens["transactions"]] == ["GRANT"]
    assert invoices(client, "twice_paid")[0]["modifiedAt"] == "2025-01-15T10:30:00Z"


def test_inv21_paid_free_invoice_is_a_no_op(client: Client) -> None:
    """INV-21: an invoice already PAID at creation (free plan) -> 200, nothing changes."""
    create_customer(client, "freebie")
    invoice_id = subscribe(client, "freebie", "free")["invoice"]["id"]
    assert mark_paid(client, invoice_id).json() == {"success": True}
    assert invoices(client, "freebie")[0]["status"] == "PAID"


def test_inv22_pending_invoice_is_not_payable(client: Client) -> None:
    """INV-22, checklist 12: marking a PENDING in-arrears invoice -> 400, status unchanged."""
    create_customer(client, "pend")
    invoice_id = subscribe(client, "pend", "usage_monthly")["invoice"]["id"]
    assert error(mark_paid(client, invoice_id), 400) == NOT_PAYABLE
    assert invoices(client, "pend")[0]["status"] == "PENDING"


def test_inv23_malformed_and_unknown_invoice_ids(client: Client) -> None:
    """INV-23: a malformed id -> 400 naming invoiceId; an unknown one -> 404."""
    assert "invoiceId" in error(mark_paid(client, "inv_123"), 400)
    assert error(mark_paid(client, NIL), 404) == "Invoice not found."
    assert error(mark_paid(client, "d3b07384-d9a0-4c9b-8f6e-0a1b2c3d4e5f"), 404) == (
        "Invoice not found."
    )


def test_str1_stripe_disabled_before_invoice_lookup(client: Client) -> None:
    """STR-1, STR-7: without Stripe, checkout is 400 "Stripe is not enabled at the account."
    for any invoice id, checked before the lookup; mark-paid remains the payment path."""
    data = paid_subscriber(client, "stripe", "pro_monthly")
    for invoice_id in (data["invoice"]["id"], NIL, "not-a-uuid"):
        response = client.post(f"{C}/billing/invoices/{invoice_id}/stripe/checkout")
        assert error(response, 400) == "Stripe is not enabled at the account."


# -- listCustomerInvoices ----------------------------------------------------------------------


def test_inv25_inv26_every_invoice_oldest_first(client: Client) -> None:
    """INV-25, INV-26, checklist 17: invoices of every subscription in every status, ordered by
    createdAt ascending."""
    create_customer(client, "hist")
    first = subscribe(client, "hist", "usage_monthly")["invoice"]
    advance(client, seconds=3600)
    second = subscribe(client, "hist", "pro_monthly")["invoice"]
    advance(client, seconds=3600)
    third = subscribe(client, "hist", "free")["invoice"]
    listed = invoices(client, "hist")
    assert [i["id"] for i in listed] == [first["id"], second["id"], third["id"]]
    assert [i["status"] for i in listed] == ["PENDING", "DUE", "PAID"]
    assert [i["createdAt"] for i in listed] == [
        "2025-01-15T10:30:00Z", "2025-01-15T11:30:00Z", "2025-01-15T12:30:00Z"
    ]  # fmt: skip


def test_inv26_ties_are_broken_by_id(client: Client) -> None:
    """INV-26: invoices created at the same instant are ordered by id."""
    create_customer(client, "ties")
    for key in ("usage_monthly", "pro_monthly", "free", "starter_monthly", "enterprise_monthly"):
        subscribe(client, "ties", key)
    ids = [i["id"] for i in invoices(client, "ties")]
    assert len(ids) == 5
    assert ids == sorted(ids)


def test_inv26_inv27_empty_and_unknown(client: Client) -> None:
    """INV-26: a customer without invoices gets []; INV-27: unknown customer -> 404."""
    create_customer(client, "none_yet")
    assert client.get(f"{C}/billing/invoices/none_yet").json() == {"success": True, "data": []}
    assert error(client.get(f"{C}/billing/invoices/nobody"), 404) == "Customer not found."


def test_inv28_invoice_dto_in_the_list(client: Client) -> None:
    """INV-28, INV-4: every field, `subscription` with plan and without customer, no items."""
    create_customer(client, "dto")
    subscribe(client, "dto", "pro_monthly")
    (invoice,) = invoices(client, "dto")
    assert set(invoice) == {"id", "amount", "currency", "status", "dueDate", "subscription",
                            "createdAt", "modifiedAt", "metadata"}  # fmt: skip
    assert "customer" not in invoice["subscription"]
    assert invoice["subscription"]["plan"]["key"] == "pro_monthly"
    assert invoice["metadata"]["invoiceType"] == "INITIAL"
    assert invoice["metadata"]["periodStart"] == "2025-01-15T00:00:00Z"
    assert invoice["metadata"]["periodEnd"] == "2025-02-15T00:00:00Z"
    assert money(invoice["amount"]) == Decimal("49")
