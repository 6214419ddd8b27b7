"""Billing lifecycle scenarios, part 2: upgrades, scheduled downgrades, and refused calls that
must change nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    C,
    Client,
    advance,
    check,
    create_customer,
    invoices,
    mark_paid,
    paid_subscriber,
    plan_id,
    pool,
    subscribe,
)
from tests.http.lifecycle_support import (
    ALREADY_CANCELLED,
    NOT_IN_PLAN,
    NOT_PAYABLE,
    PAST_DUE,
    SUBS,
    allowed,
    cancel,
    change,
    denial,
    done,
    lines,
    meta,
    money,
    only_sub,
    refused,
    revert,
    snapshot,
    tokens,
    totals,
    unschedule,
    use,
)

NIL = "00000000-0000-0000-0000-000000000000"
APR1, APR11, MAY1 = "2025-04-01T00:00:00Z", "2025-04-11T00:00:00Z", "2025-05-01T00:00:00Z"
FEB15, MAR15 = "2025-02-15T00:00:00Z", "2025-03-15T00:00:00Z"


def test_upgrade_prorates_applies_limits_and_tops_up_credits(
    client: Client, system: ActorSystem
) -> None:
    """SUB-64..SUB-67, INV-2, INV-3, INV-5, INV-20, INV-51, ENT-20: $49 -> $99 after 10 of 30
    days gives an ADJUSTMENT_OPEN invoice of 33.33 (-32.67 + 66.00) due now; the new plan's
    features and limits apply at once with usage carried over; the allocation delta (4,000,000)
    is granted; a pending downgrade is cancelled; paying gives ADJUSTMENT_PAID; the next renewal
    bills the new plan. An unpaid adjustment suspends like any invoice (grace 0 here)."""
    advance(client, to="2025-04-01T09:00:00Z")  # April: a 30-day period
    sub = paid_subscriber(client, "up")["subscription"]
    assert (sub["currentPeriodStart"], sub["currentPeriodEnd"]) == (APR1, MAY1)
    use(client, "up", "c1", "api_calls", 100)
    done(change(client, sub["id"], "starter_monthly", "DOWNGRADE"))
    advance(client, to=APR11)
    assert denial(client, "up", "sso") == NOT_IN_PLAN
    assert check(client, "up", "api_calls")["usage"]["limit"] == 100000

    done(change(client, sub["id"], "enterprise_monthly", "UPGRADE"))
    initial, adjustment = invoices(client, "up")
    assert initial["status"] == "PAID"
    assert adjustment["status"] == "ADJUSTMENT_OPEN"
    assert money(adjustment["amount"]) == Decimal("33.33")
    assert (adjustment["dueDate"], adjustment["createdAt"]) == (APR11, APR11)
    assert meta(adjustment) == ("ADJUSTMENT", APR11, MAY1)
    assert lines(system, "up", adjustment["id"]) == [
        ("Credit for unused Pro", Decimal("-32.67")),
        ("Charge for remaining Enterprise", Decimal("66.00")),
    ]
    upgraded = only_sub(client, "up")
    assert upgraded["plan"]["key"] == "enterprise_monthly"
    assert (upgraded["currentPeriodStart"], upgraded["currentPeriodEnd"]) == (APR1, MAY1)
    assert upgraded["isActive"] is True  # SUB-65: before the adjustment is paid
    assert "scheduledChange" not in upgraded  # the downgrade is CANCELLED, the upgrade COMPLETED
    assert allowed(client, "up", "sso")
    assert check(client, "up", "api_calls")["usage"] == {"used": 100}  # unlimited now
    assert totals(tokens(client, "up")) == (5_000_000, 5_000_000, 0, 0, 0)
    assert sorted(money(g["amount"]) for g in pool(client, "up", expand="grants")["grants"]) == [
        1_000_000, 4_000_000
    ]  # fmt: skip
    assert {g["source"] for g in pool(client, "up", expand="grants")["grants"]} == {"SUBSCRIPTION"}

    done(mark_paid(client, adjustment["id"]))
    assert invoices(client, "up")[1]["status"] == "ADJUSTMENT_PAID"
    assert money(tokens(client, "up")["totalGranted"]) == 5_000_000  # no grant for adjustments

    advance(client, to=MAY1)
    renewal = invoices(client, "up")[2]
    assert meta(renewal) == ("RENEWAL", MAY1, "2025-06-01T00:00:00Z")
    assert money(renewal["amount"]) == Decimal("99.08")
    assert lines(system, "up", renewal["id"]) == [
        ("Plan base price: Enterprise", Decimal(99)),
        ("Usage for api_calls: 100 calls", Decimal("0.08")),  # priced with the plan at period end
    ]

    # $19 -> $49 after 10 of 30 days with no grace: the adjustment is PAST_DUE at once
    advance(client, to="2025-06-01T09:00:00Z")
    create_customer(client, "up0")
    data = subscribe(client, "up0", "starter_monthly", gracePeriod=0)
    done(mark_paid(client, data["invoice"]["id"]))
    advance(client, to="2025-06-11T00:00:00Z")
    done(change(client, data["subscription"]["id"], "pro_monthly", "UPGRADE"))
    late = invoices(client, "up0")[1]
    assert (late["status"], money(late["amount"])) == ("PAST_DUE", Decimal("20.00"))
    assert lines(system, "up0", late["id"]) == [
        ("Credit for unused Starter", Decimal("-12.67")),
        ("Charge for remaining Pro", Decimal("32.67")),
    ]
    assert denial(client, "up0", "projects") == PAST_DUE
    assert money(tokens(client, "up0")["totalGranted"]) == 1_000_000  # 100,000 + delta 900,000
    done(mark_paid(client, late["id"]))
    assert invoices(client, "up0")[1]["status"] == "ADJUSTMENT_PAID"  # INV-3
    assert allowed(client, "up0", "seats")


def _pending(sub: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    change_ = sub["scheduledChange"]
    return (change_["type"], change_["status"], change_["fromPlan"]["key"],
            change_["toPlan"]["key"], change_["effectiveAt"], change_["subscriptionId"])  # fmt: skip


def test_downgrade_is_scheduled_cancellable_replaceable_and_applied_at_period_end(
    client: Client, system: ActorSystem
) -> None:
    """SUB-30 (steps 1, 2), SUB-62, SUB-63, SUB-68, SUB-70, INV-31, CRD-12, CRD-40: a DOWNGRADE
    is PENDING until the period end and keeps the current plan; DELETE cancels it (and is a
    no-op when nothing is pending); a second downgrade replaces the first; at the period end
    the plan switches, the closing usage is priced on the old plan and the renewal base, limits,
    features and next credit grant on the new one."""
    sub_id = paid_subscriber(client, "dn")["subscription"]["id"]
    done(change(client, sub_id, "starter_monthly", "DOWNGRADE"))
    sub = only_sub(client, "dn")
    assert _pending(sub) == ("DOWNGRADE", "PENDING", "pro_monthly", "starter_monthly", FEB15,
                             sub_id)  # fmt: skip
    assert sub["plan"]["key"] == "pro_monthly"
    assert allowed(client, "dn", "seats")
    assert len(invoices(client, "dn")) == 1

    done(unschedule(client, sub_id))
    assert "scheduledChange" not in only_sub(client, "dn")
    done(unschedule(client, sub_id))  # SUB-70: nothing pending -> 200 no-op
    assert only_sub(client, "dn")["plan"]["key"] == "pro_monthly"

    done(change(client, sub_id, "free", "DOWNGRADE"))
    first = only_sub(client, "dn")["scheduledChange"]
    assert first["toPlan"]["key"] == "free"
    advance(client, seconds=60)
    done(change(client, sub_id, "starter_monthly", "DOWNGRADE"))  # replaces the free one
    second = only_sub(client, "dn")["scheduledChange"]
    assert _pending(only_sub(client, "dn"))[3:5] == ("starter_monthly", FEB15)
    assert second["id"] != first["id"]
    assert second["createdAt"] == "2025-01-15T10:31:00Z"

    use(client, "dn", "c1", "api_calls", 2000)
    advance(client, to=FEB15)
    sub = only_sub(client, "dn")
    assert sub["plan"]["key"] == "starter_monthly"
    assert "scheduledChange" not in sub
    assert (sub["currentPeriodStart"], sub["currentPeriodEnd"]) == (FEB15, MAR15)
    renewal = invoices(client, "dn")[1]
    assert meta(renewal) == ("RENEWAL", FEB15, MAR15)
    assert (renewal["status"], money(renewal["amount"])) == ("DUE", Decimal("21.00"))
    assert lines(system, "dn", renewal["id"]) == [
        ("Plan base price: Starter", Decimal(19)),
        ("Usage for api_calls: 2000 calls", Decimal("2.00")),  # Pro's 0.001, not Starter's 0.002
    ]
    assert denial(client, "dn", "seats") == NOT_IN_PLAN
    assert check(client, "dn", "api_calls")["usage"]["limit"] == 10000
    assert totals(tokens(client, "dn")) == (250000, 1_000_000, 0, 750000, 0)  # kept, capped
    done(mark_paid(client, renewal["id"]))
    assert totals(tokens(client, "dn")) == (350000, 1_100_000, 0, 750000, 0)
    newest = max(pool(client, "dn", expand="grants")["grants"], key=lambda g: g["grantedAt"])
    assert money(newest["amount"]) == 100000  # Starter's allocation, expiring a month later
    assert newest["expiresAt"] == "2025-03-15T00:00:00Z"


def test_refused_calls_change_nothing(client: Client) -> None:
    """SUB-40, SUB-41, SUB-42, SUB-51, SUB-60, SUB-61, SUB-70, INV-22, INV-23, AMB-16: each refused
    call returns its status and message and leaves getCustomer, the invoices and the pools as
    they were; idempotent no-ops return 200 and also change nothing."""
    sub_id = paid_subscriber(client, "bad")["subscription"]["id"]
    advance(client, seconds=60)
    before = snapshot(client, "bad")

    def unchanged(response: Any, status: int, message: str | None = None) -> None:
        if status == 200:
            done(response)
        else:
            refused(response, status, message)
        assert snapshot(client, "bad") == before

    plan_change = f"{SUBS}/{sub_id}/plan-change"
    unchanged(change(client, sub_id, "pro_monthly", "UPGRADE"), 400)
    unchanged(change(client, sub_id, "pro_monthly", "DOWNGRADE"), 400)
    unchanged(client.post(plan_change, json={"changeToPlanId": plan_id(client, "free"),
                                             "changeType": "SIDEGRADE"}), 400)  # fmt: skip
    unchanged(client.post(plan_change, json={"changeType": "UPGRADE"}), 400)
    unchanged(client.post(plan_change, json={"changeToPlanId": NIL, "changeType": "UPGRADE"}),
              404, "Plan not found.")  # fmt: skip
    for bad_id, status in ((NIL, 404), ("sub_123", 400)):
        message = "Subscription not found." if status == 404 else None
        unchanged(cancel(client, bad_id, "IMMEDIATE"), status, message)
        unchanged(revert(client, bad_id), status, message)
        unchanged(change(client, bad_id, "free", "DOWNGRADE"), status, message)
        unchanged(unschedule(client, bad_id), status, message)
    assert "subscriptionId" in refused(cancel(client, "sub_123"), 400)
    unchanged(cancel(client, sub_id, "NOW"), 400)
    unchanged(cancel(client, sub_id, "immediate"), 400)
    unchanged(revert(client, sub_id), 200)  # nothing scheduled: no-op
    unchanged(unschedule(client, sub_id), 200)

    done(cancel(client, sub_id, "END_OF_PERIOD"))
    scheduled = only_sub(client, "bad")
    assert (scheduled["cancelMode"], scheduled["cancelEffectiveAt"]) == ("END_OF_PERIOD", FEB15)
    before = snapshot(client, "bad")
    advance(client, seconds=60)
    unchanged(change(client, sub_id, "enterprise_monthly", "UPGRADE"), 400)
    unchanged(change(client, sub_id, "starter_monthly", "DOWNGRADE"), 400)
    unchanged(cancel(client, sub_id, "END_OF_PERIOD"), 200)  # SUB-42: timestamps kept
    unchanged(cancel(client, sub_id), 200)  # the default mode is END_OF_PERIOD

    advance(client, to=FEB15)  # the cancellation takes effect
    before = snapshot(client, "bad")
    assert before[0]["subscriptions"] == []
    for mode in ("IMMEDIATE", "END_OF_PERIOD"):
        unchanged(cancel(client, sub_id, mode), 400, ALREADY_CANCELLED)
    unchanged(revert(client, sub_id), 400, ALREADY_CANCELLED)
    unchanged(change(client, sub_id, "enterprise_monthly", "UPGRADE"), 400)

    # an IMMEDIATE cancellation cannot be reverted; its voided invoice cannot be paid
    create_customer(client, "void")
    data = subscribe(client, "void", "pro_monthly")
    done(cancel(client, data["subscription"]["id"], "IMMEDIATE"))
    (voided,) = invoices(client, "void")
    assert voided["status"] == "VOID"
    after_void = snapshot(client, "void")
    refused(revert(client, data["subscription"]["id"]), 400, ALREADY_CANCELLED)
    refused(mark_paid(client, voided["id"]), 400, NOT_PAYABLE)
    refused(cancel(client, data["subscription"]["id"], "IMMEDIATE"), 400, ALREADY_CANCELLED)
    assert snapshot(client, "void") == after_void
    assert snapshot(client, "bad") == before
    assert client.get(f"{C}/customers/void").status_code == 200
