"""Billing lifecycle scenarios, part 5: money that must not leak through plan changes and
catch-up (issue 12, items 1 and 7; docs/billing-rules.md MNY-A*)."""

from __future__ import annotations

from decimal import Decimal

from tests.http.helpers import (
    Client,
    advance,
    create_customer,
    error,
    invoices,
    mark_paid,
    paid_subscriber,
    subscribe,
)
from tests.http.lifecycle_support import (
    PAST_DUE,
    allowed,
    change,
    denial,
    done,
    meta,
    money,
    only_sub,
    tokens,
    totals,
)

FEB15, MAR15, APR15, MAY15 = (
    "2025-02-15T00:00:00Z",
    "2025-03-15T00:00:00Z",
    "2025-04-15T00:00:00Z",
    "2025-05-15T00:00:00Z",
)


def test_round_trips_near_the_period_end_grant_the_allocation_once(client: Client) -> None:
    """MNY-A1, MNY-A2, SUB-67, INV-51, AMB-13: ten round trips enterprise -> pro -> enterprise,
    27 s before the period end, are all accepted (a cheaper UPGRADE stays immediate) and their
    adjustments round to 0 so no invoice is issued; the TOKENS balance stays at the period's
    allocation, 5,000,000, and is not minted to 45,000,000. The next period grants once."""
    sub_id = paid_subscriber(client, "rt", "enterprise_monthly")["subscription"]["id"]
    assert totals(tokens(client, "rt")) == (5_000_000, 5_000_000, 0, 0, 0)
    advance(client, to="2025-02-14T23:59:33Z")
    for _ in range(10):
        done(change(client, sub_id, "pro_monthly", "UPGRADE"))
        done(change(client, sub_id, "enterprise_monthly", "UPGRADE"))
    assert only_sub(client, "rt")["plan"]["key"] == "enterprise_monthly"
    assert [meta(i)[0] for i in invoices(client, "rt")] == ["INITIAL"]
    assert totals(tokens(client, "rt")) == (5_000_000, 5_000_000, 0, 0, 0)

    advance(client, to=FEB15)  # CAPPED rollover keeps 250,000; the renewal grants on payment
    renewal = invoices(client, "rt")[1]
    done(mark_paid(client, renewal["id"]))
    done(change(client, sub_id, "pro_monthly", "UPGRADE"))
    done(change(client, sub_id, "enterprise_monthly", "UPGRADE"))
    assert money(tokens(client, "rt")["balance"]) == 5_250_000


def test_a_downgrade_to_a_dearer_plan_is_scheduled_like_any_downgrade(client: Client) -> None:
    """SUB-61, SUB-62, SUB-63, AMB-13, MNY-A3: changeType decides the timing, so a DOWNGRADE to
    a dearer plan is accepted and scheduled for the period end, where the renewal bills the
    dearer plan and grants its allocation; nothing is granted or billed before."""
    sub_id = paid_subscriber(client, "dear", "starter_monthly")["subscription"]["id"]
    done(change(client, sub_id, "enterprise_monthly", "DOWNGRADE"))
    sub = only_sub(client, "dear")
    assert sub["plan"]["key"] == "starter_monthly"
    assert sub["scheduledChange"]["toPlan"]["key"] == "enterprise_monthly"
    assert len(invoices(client, "dear")) == 1
    assert money(tokens(client, "dear")["totalGranted"]) == 100_000
    assert denial(client, "dear", "sso") == "Feature not included in plan."

    advance(client, to=FEB15)
    renewal = invoices(client, "dear")[1]
    assert meta(renewal) == ("RENEWAL", FEB15, MAR15)
    assert money(renewal["amount"]) == Decimal(99)
    done(mark_paid(client, renewal["id"]))
    assert only_sub(client, "dear")["plan"]["key"] == "enterprise_monthly"
    assert money(tokens(client, "dear")["totalGranted"]) == 5_100_000
    assert allowed(client, "dear", "sso")


def test_a_change_of_billing_timing_is_refused_with_its_reason(client: Client) -> None:
    """MNY-A4 (kept SUB-61 refusal): a change between an in-advance and an in-arrears plan, in
    either direction and with either changeType, is 400 and changes nothing."""
    sub_id = paid_subscriber(client, "tim", "pro_monthly")["subscription"]["id"]
    for change_type in ("UPGRADE", "DOWNGRADE"):
        message = error(change(client, sub_id, "usage_monthly", change_type), 400)
        assert message.startswith("changeToPlanId: the target plan must have the same billing")
    assert only_sub(client, "tim")["plan"]["key"] == "pro_monthly"
    assert "scheduledChange" not in only_sub(client, "tim")


def test_catch_up_after_two_unpaid_periods_runs_until_the_period_contains_now(
    client: Client,
) -> None:
    """SUB-34, SUB-35, MNY-A5, INV-12: an unpaid in-advance subscription is never renewed while
    awaiting payment; paid two periods late, catch-up renews every missed period until the
    period contains now, each catch-up invoice due at the payment (not already past its grace),
    so the subscription is ACTIVE and not suspended again a month behind."""
    create_customer(client, "catch")
    initial = subscribe(client, "catch", "pro_monthly")["invoice"]
    advance(client, to="2025-04-20T12:00:00Z")  # two period ends pass unpaid
    assert [i["status"] for i in invoices(client, "catch")] == ["PAST_DUE"]

    done(mark_paid(client, initial["id"]))
    listed = invoices(client, "catch")
    assert [meta(i) for i in listed[1:]] == [
        ("RENEWAL", FEB15, MAR15),
        ("RENEWAL", MAR15, APR15),
        ("RENEWAL", APR15, MAY15),
    ]
    assert [i["status"] for i in listed] == ["PAID", "DUE", "DUE", "DUE"]
    assert {i["dueDate"] for i in listed[1:]} == {"2025-04-20T12:00:00Z"}
    current = only_sub(client, "catch")
    assert (current["currentPeriodStart"], current["currentPeriodEnd"]) == (APR15, MAY15)
    assert current["isActive"] is True
    assert allowed(client, "catch", "projects")

    advance(client, to="2025-04-23T12:00:00Z")  # the catch-up invoices' grace ends
    assert denial(client, "catch", "projects") == PAST_DUE
    for invoice in invoices(client, "catch")[1:]:
        done(mark_paid(client, invoice["id"]))
    assert allowed(client, "catch", "projects")
    assert only_sub(client, "catch")["currentPeriodEnd"] == MAY15
