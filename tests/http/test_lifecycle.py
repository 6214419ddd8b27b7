"""Billing lifecycle scenarios, part 1: payment, renewal, grace and catch-up, long clock steps.

Each test is one flow on the manual clock (SCH-4); the rules it proves are in its docstring.
Other parts: test_lifecycle_changes.py (plan changes, refused calls), test_lifecycle_cancel.py
(cancellation), test_lifecycle_arrears.py (in-arrears invoices, rollover).
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    Client,
    advance,
    check,
    create_customer,
    get_customer,
    invoices,
    mark_paid,
    paid_subscriber,
    plan_doc,
    pool,
    pools,
    put_catalog,
    subscribe,
)
from tests.http.lifecycle_support import (
    AWAITING,
    PAST_DUE,
    allowed,
    denial,
    done,
    lines,
    meta,
    money,
    only_sub,
    tokens,
    totals,
    use,
)

JAN15, FEB15, MAR15 = "2025-01-15T00:00:00Z", "2025-02-15T00:00:00Z", "2025-03-15T00:00:00Z"
APR15, MAY15 = "2025-04-15T00:00:00Z", "2025-05-15T00:00:00Z"


def test_in_advance_subscribe_is_due_until_paid_then_active_with_credits(client: Client) -> None:
    """SUB-17, SUB-35, INV-5, INV-20, INV-21, ENT-12, CRD-1, CRD-12: a paid in-advance plan
    starts DUE and inactive, denied as awaiting payment, with no credits; mark-paid makes it
    ACTIVE, entitles it and grants the plan allocation once, without moving the period."""
    create_customer(client, "adv")
    data = subscribe(client, "adv", "pro_monthly")
    sub, invoice = data["subscription"], data["invoice"]
    assert sub["isActive"] is False
    assert (sub["currentPeriodStart"], sub["currentPeriodEnd"]) == (JAN15, FEB15)
    assert invoice["status"] == "DUE"
    assert money(invoice["amount"]) == Decimal(49)
    assert invoice["dueDate"] == JAN15
    assert meta(invoice) == ("INITIAL", JAN15, FEB15)
    assert denial(client, "adv", "projects") == AWAITING
    assert denial(client, "adv", "ai_chat") == AWAITING
    assert "creditPools" not in get_customer(client, "adv")
    assert pools(client, "adv") == []

    advance(client, seconds=3600)
    done(mark_paid(client, invoice["id"]))
    (paid,) = invoices(client, "adv")
    assert (paid["status"], money(paid["amount"])) == ("PAID", Decimal(49))
    assert paid["modifiedAt"] == "2025-01-15T11:30:00Z"
    active = only_sub(client, "adv")
    assert active["isActive"] is True
    assert (active["currentPeriodStart"], active["currentPeriodEnd"]) == (JAN15, FEB15)
    for feature in ("projects", "seats", "api_calls", "ai_chat"):
        assert allowed(client, "adv", feature), feature
    assert check(client, "adv", "api_calls")["usage"] == {
        "used": 0, "limit": 100000, "remaining": 100000
    }  # fmt: skip
    granted = tokens(client, "adv")
    assert totals(granted) == (Decimal(1_000_000), Decimal(1_000_000), 0, 0, 0)
    assert granted["hardLimit"] is True
    assert (granted["rolloverPolicy"], money(granted["rolloverCap"])) == ("CAPPED", Decimal(250000))
    (grant,) = pool(client, "adv", expand="grants")["grants"]
    assert grant["source"] == "SUBSCRIPTION"
    assert grant["subscriptionId"] == sub["id"]
    assert grant["grantedAt"] == "2025-01-15T11:30:00Z"

    done(mark_paid(client, invoice["id"]))  # INV-21: no second grant
    assert money(tokens(client, "adv")["totalGranted"]) == 1_000_000


def test_in_advance_renewal_bills_base_and_closing_usage(
    client: Client, system: ActorSystem
) -> None:
    """SUB-30, SUB-31, SUB-36, INV-5, INV-11, INV-30, INV-31, INV-35, INV-37, INV-41, ENT-19,
    CRD-12, CRD-40: at the period end a RENEWAL invoice is DUE for the next period with the
    base line and the closing period's usage (each event billed once; credit-covered units not
    billed); access continues in grace; reset counters restart at 0; plan credits roll over
    (CAPPED) and the next allocation arrives with payment."""
    sub = paid_subscriber(client, "ren")["subscription"]
    use(client, "ren", "c1", "api_calls", 1000)
    use(client, "ren", "c2", "api_calls", 234)
    use(client, "ren", "t1", "ai_chat", 500)  # drawn from credits (CRD-30), never invoiced
    assert check(client, "ren", "api_calls")["usage"]["used"] == 1234

    advance(client, to="2025-02-14T23:59:59Z")
    assert len(invoices(client, "ren")) == 1
    advance(client, to=FEB15)
    initial, renewal = invoices(client, "ren")
    assert initial["status"] == "PAID"
    assert renewal["status"] == "DUE"
    assert money(renewal["amount"]) == Decimal("50.23")
    assert renewal["dueDate"] == FEB15  # INV-5: the period start it bills
    assert renewal["createdAt"] == FEB15
    assert meta(renewal) == ("RENEWAL", FEB15, MAR15)
    assert lines(system, "ren", renewal["id"]) == [
        ("Plan base price: Pro", Decimal(49)),
        ("Usage for api_calls: 1234 calls", Decimal("1.23")),  # 1.234 rounded once
    ]
    renewed = only_sub(client, "ren")
    assert (renewed["currentPeriodStart"], renewed["currentPeriodEnd"]) == (FEB15, MAR15)
    assert renewed["id"] == sub["id"]
    assert renewed["isActive"] is True
    assert check(client, "ren", "api_calls")["usage"] == {
        "used": 0, "limit": 100000, "remaining": 100000
    }  # fmt: skip
    # CRD-40 CAPPED 250000: 999,500 plan credits left, 749,500 expire; no grant before payment
    assert totals(tokens(client, "ren")) == (250000, 1_000_000, 500, 749500, 0)

    use(client, "ren", "c3", "api_calls", 10)
    advance(client, to="2025-02-17T23:59:59Z")  # the last instant of grace
    assert invoices(client, "ren")[1]["status"] == "DUE"
    assert allowed(client, "ren", "api_calls")
    assert check(client, "ren", "api_calls")["usage"]["used"] == 10
    done(mark_paid(client, renewal["id"]))
    assert invoices(client, "ren")[1]["status"] == "PAID"
    assert totals(tokens(client, "ren")) == (1_250_000, 2_000_000, 500, 749500, 0)

    advance(client, to=MAR15)
    third = invoices(client, "ren")[2]
    assert meta(third) == ("RENEWAL", MAR15, APR15)
    assert money(third["amount"]) == Decimal("49.01")
    assert lines(system, "ren", third["id"]) == [
        ("Plan base price: Pro", Decimal(49)),
        ("Usage for api_calls: 10 calls", Decimal("0.01")),
    ]
    # the older grant (250,000) expires first, then 750,000 of the newer one
    assert totals(tokens(client, "ren")) == (250000, 2_000_000, 500, 1_749_500, 0)


def test_grace_past_due_then_late_payment_catches_up_to_the_period_containing_now(
    client: Client,
) -> None:
    """INV-10..INV-12, INV-20, SUB-3, SUB-34, ENT-13, SCH-3, MNY-A5: an unpaid renewal keeps
    access until dueDate + 3 days, then goes PAST_DUE and suspends (denied "Subscription is past
    due."); a suspended subscription does not renew; the late payment runs every missed renewal
    until the period contains now, each due at the payment, so access is back at once."""
    paid_subscriber(client, "late")
    advance(client, to=FEB15)
    advance(client, to="2025-02-17T23:59:59Z")
    assert [i["status"] for i in invoices(client, "late")] == ["PAID", "DUE"]
    assert allowed(client, "late", "projects")
    advance(client, to="2025-02-18T00:00:00Z")
    renewal = invoices(client, "late")[1]
    assert renewal["status"] == "PAST_DUE"
    assert renewal["modifiedAt"] == "2025-02-18T00:00:00Z"
    assert only_sub(client, "late")["isActive"] is False
    assert denial(client, "late", "projects") == PAST_DUE

    advance(client, to="2025-04-20T12:00:00Z")  # two period ends pass while suspended
    assert len(invoices(client, "late")) == 2
    suspended = only_sub(client, "late")
    assert (suspended["currentPeriodStart"], suspended["currentPeriodEnd"]) == (FEB15, MAR15)

    done(mark_paid(client, renewal["id"]))
    listed = invoices(client, "late")
    assert [i["status"] for i in listed] == ["PAID", "PAID", "DUE", "DUE"]
    assert [meta(i) for i in listed[2:]] == [("RENEWAL", MAR15, APR15), ("RENEWAL", APR15, MAY15)]
    assert [(i["createdAt"], i["dueDate"]) for i in listed[2:]] == [
        (MAR15, "2025-04-20T12:00:00Z"),
        (APR15, "2025-04-20T12:00:00Z"),
    ]
    assert [money(i["amount"]) for i in listed[2:]] == [Decimal(49), Decimal(49)]
    current = only_sub(client, "late")
    assert (current["currentPeriodStart"], current["currentPeriodEnd"]) == (APR15, MAY15)
    assert current["isActive"] is True
    assert allowed(client, "late", "projects")
    for invoice in listed[2:]:
        done(mark_paid(client, invoice["id"]))
    assert [i["status"] for i in invoices(client, "late")] == ["PAID"] * 4
    assert allowed(client, "late", "projects")


def test_zero_grace_loses_access_at_the_due_date(client: Client) -> None:
    """INV-13, INV-14, SUB-3: with gracePeriod 0 an in-advance invoice is PAST_DUE as soon as
    now >= dueDate; an unpaid initial invoice still reads as awaiting payment."""
    create_customer(client, "zero")
    invoice = subscribe(client, "zero", "pro_monthly", gracePeriod=0)["invoice"]
    assert invoices(client, "zero")[0]["status"] == "PAST_DUE"  # due 00:00, now 10:30
    assert denial(client, "zero", "projects") == AWAITING
    done(mark_paid(client, invoice["id"]))
    assert invoices(client, "zero")[0]["status"] == "PAID"
    advance(client, to="2025-02-14T23:59:59Z")
    assert allowed(client, "zero", "projects")
    advance(client, to=FEB15)
    renewal = invoices(client, "zero")[1]
    assert (renewal["status"], renewal["dueDate"]) == ("PAST_DUE", FEB15)
    assert denial(client, "zero", "projects") == PAST_DUE
    done(mark_paid(client, renewal["id"]))
    assert allowed(client, "zero", "projects")


ANCHOR_31 = [
    "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30",
    "2025-07-31", "2025-08-31", "2025-09-30", "2025-10-31", "2025-11-30", "2025-12-31",
    "2026-01-31", "2026-02-28", "2026-03-31",
]  # fmt: skip


def test_thirteen_months_in_one_clock_step_renew_in_order(client: Client) -> None:
    """SUB-13, SUB-30, SUB-31, SUB-33, SCH-1, SCH-3: one 13-month clock step yields 13
    renewals in order, on contiguous periods that keep anchor day 31 (clamped, never drifting);
    free renewals are PAID at 0, paid renewals inside a long grace are DUE at their start."""
    put_catalog(client, plan_doc("flat_ten", priceAmount=10, billingTiming="IN_ADVANCE"))
    advance(client, to="2025-01-31T12:00:00Z")
    create_customer(client, "free31")
    assert subscribe(client, "free31", "free")["subscription"]["billingAnchorDay"] == 31
    create_customer(client, "paid31")
    first = subscribe(client, "paid31", "flat_ten", gracePeriod=1000)["invoice"]
    done(mark_paid(client, first["id"]))

    advance(client, to="2026-03-01T00:00:00Z")
    bounds = [f"{day}T00:00:00Z" for day in ANCHOR_31]
    periods = list(pairwise(bounds))
    for ref, status, amount in (("free31", "PAID", Decimal(0)), ("paid31", "DUE", Decimal(10))):
        listed = invoices(client, ref)
        assert len(listed) == 14, ref
        assert [meta(i) for i in listed] == [
            ("INITIAL" if n == 0 else "RENEWAL", *period) for n, period in enumerate(periods)
        ]
        for renewal, (start, _end) in zip(listed[1:], periods[1:], strict=True):
            assert (renewal["createdAt"], renewal["dueDate"]) == (start, start)
            assert (renewal["status"], money(renewal["amount"])) == (status, amount)
        sub = only_sub(client, ref)
        assert (sub["currentPeriodStart"], sub["currentPeriodEnd"]) == periods[-1]
        assert sub["billingAnchorDay"] == 31
        assert sub["isActive"] is True
    for renewal in invoices(client, "paid31")[1:]:
        done(mark_paid(client, renewal["id"]))
    assert {i["status"] for i in invoices(client, "paid31")} == {"PAID"}
    assert only_sub(client, "paid31")["isActive"] is True
