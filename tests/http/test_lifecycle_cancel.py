"""Billing lifecycle scenarios, part 3: END_OF_PERIOD and IMMEDIATE cancellation."""

from __future__ import annotations

from decimal import Decimal

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    Client,
    advance,
    create_customer,
    get_customer,
    grant,
    invoices,
    mark_paid,
    ok,
    paid_subscriber,
    pool,
    subscribe,
)
from tests.http.lifecycle_support import (
    ALREADY_CANCELLED,
    NO_SUBSCRIPTION,
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
    tokens,
    totals,
    use,
)

JAN15, FEB15, MAR15 = "2025-01-15T00:00:00Z", "2025-02-15T00:00:00Z", "2025-03-15T00:00:00Z"
_CANCEL_FIELDS = ("cancelMode", "cancelEffectiveAt", "cancelledAt")


def test_end_of_period_cancel_keeps_access_reverts_then_ends_and_claws_back(
    client: Client,
) -> None:
    """SUB-2, SUB-42, SUB-43, SUB-44, SUB-50, CUS-12, CRD-3, CRD-31, CRD-43, AMB-7, AMB-15: an
    END_OF_PERIOD cancel keeps access and sets cancelEffectiveAt = period end (a repeat keeps
    the timestamps, a pending downgrade is cancelled); revert clears the fields; at the period
    end the subscription ends without a renewal invoice, leaves getCustomer, and its remaining
    plan credits are reversed while purchased credits survive."""
    sub_id = paid_subscriber(client, "eop")["subscription"]["id"]
    advance(client, seconds=60)
    assert ok(grant(client, "eop", 5000), 201)["balance"] == 1_005_000
    use(client, "eop", "t1", "ai_chat", 1000)  # drawn from the older plan grant (CRD-31)
    assert totals(tokens(client, "eop")) == (1_004_000, 1_005_000, 1000, 0, 0)

    advance(client, to="2025-01-20T12:00:00Z")
    done(change(client, sub_id, "starter_monthly", "DOWNGRADE"))
    done(cancel(client, sub_id, "END_OF_PERIOD"))
    sub = only_sub(client, "eop")
    assert [sub[f] for f in _CANCEL_FIELDS] == ["END_OF_PERIOD", FEB15, "2025-01-20T12:00:00Z"]
    assert sub["isActive"] is True
    assert "scheduledChange" not in sub  # SUB-43
    assert allowed(client, "eop", "projects")
    advance(client, seconds=3600)
    done(cancel(client, sub_id, "END_OF_PERIOD"))  # SUB-42: a no-op keeping the timestamps
    assert only_sub(client, "eop")["cancelledAt"] == "2025-01-20T12:00:00Z"

    done(revert(client, sub_id))
    sub = only_sub(client, "eop")
    assert not set(_CANCEL_FIELDS) & set(sub)
    assert "scheduledChange" not in sub  # the cancelled downgrade does not come back
    assert sub["plan"]["key"] == "pro_monthly"

    advance(client, to="2025-01-25T00:00:00Z")
    done(cancel(client, sub_id))  # default mode: END_OF_PERIOD
    assert only_sub(client, "eop")["cancelledAt"] == "2025-01-25T00:00:00Z"
    advance(client, to="2025-02-14T23:59:59Z")
    assert allowed(client, "eop", "projects")
    assert only_sub(client, "eop")["isActive"] is True

    advance(client, to=FEB15)
    assert get_customer(client, "eop")["subscriptions"] == []
    (only,) = invoices(client, "eop")  # no renewal invoice
    assert (only["status"], meta(only)) == ("PAID", ("INITIAL", JAN15, FEB15))
    ended = only["subscription"]
    assert ended["isActive"] is False
    assert [ended[f] for f in _CANCEL_FIELDS] == ["END_OF_PERIOD", FEB15, "2025-01-25T00:00:00Z"]
    assert denial(client, "eop", "projects") == NO_SUBSCRIPTION
    assert totals(tokens(client, "eop")) == (5000, 1_005_000, 1000, 0, 999000)
    detail = pool(client, "eop", expand="grants,transactions")
    assert [(g["source"], money(g["remaining"])) for g in detail["grants"]] == [
        ("PURCHASE", Decimal(5000))
    ]
    reversal = detail["transactions"][-1]
    assert (reversal["type"], money(reversal["amount"])) == ("REVERSAL", Decimal(-999000))
    assert reversal["createdAt"] == FEB15
    refused(cancel(client, sub_id, "IMMEDIATE"), 400, ALREADY_CANCELLED)  # SUB-41

    advance(client, to="2025-03-16T00:00:00Z")  # SUB-2: never renewed
    assert len(invoices(client, "eop")) == 1
    assert totals(tokens(client, "eop")) == (5000, 1_005_000, 1000, 0, 999000)


def test_immediate_cancel_credits_unused_paid_time_voids_unpaid_and_ends(
    client: Client, system: ActorSystem
) -> None:
    """SUB-41, SUB-45, SUB-46 (a, c, d, e, f), INV-2, INV-50, CRD-43: IMMEDIATE 10 days into a
    paid 30-day period issues a PAID CREDIT invoice of -round2(r x 49) = -32.67 due now,
    truncates the period and ends access with plan credits reversed (purchases survive); a
    subscription whose current period is unpaid gets no credit and its DUE invoice is VOID;
    cancelling again is 400."""
    advance(client, to="2025-05-01T09:00:00Z")
    create_customer(client, "unpaid")
    late = subscribe(client, "unpaid", "pro_monthly", gracePeriod=15)
    done(mark_paid(client, late["invoice"]["id"]))
    advance(client, to="2025-06-01T09:00:00Z")  # unpaid's renewal is DUE, in grace until 06-16
    created = paid_subscriber(client, "imm")["subscription"]
    assert (created["currentPeriodStart"], created["currentPeriodEnd"]) == (
        "2025-06-01T00:00:00Z", "2025-07-01T00:00:00Z"
    )  # fmt: skip
    advance(client, seconds=60)
    ok(grant(client, "imm", 300), 201)
    done(change(client, late["subscription"]["id"], "starter_monthly", "DOWNGRADE"))

    now = "2025-06-11T00:00:00Z"
    advance(client, to=now)
    done(cancel(client, created["id"], "IMMEDIATE"))
    initial, credit = invoices(client, "imm")
    assert initial["status"] == "PAID"
    assert (credit["status"], money(credit["amount"])) == ("PAID", Decimal("-32.67"))
    assert (credit["dueDate"], credit["createdAt"]) == (now, now)
    assert meta(credit) == ("CREDIT", now, "2025-07-01T00:00:00Z")  # the unused part
    assert lines(system, "imm", credit["id"]) == [
        ("Prorated credit for unused period", Decimal("-32.67"))
    ]
    ended = credit["subscription"]
    assert [ended[f] for f in _CANCEL_FIELDS] == ["IMMEDIATE", now, now]
    assert ended["currentPeriodEnd"] == now
    assert ended["isActive"] is False
    assert get_customer(client, "imm")["subscriptions"] == []
    assert denial(client, "imm", "projects") == NO_SUBSCRIPTION
    assert totals(tokens(client, "imm")) == (300, 1_000_300, 0, 0, 1_000_000)
    refused(cancel(client, created["id"], "IMMEDIATE"), 400, ALREADY_CANCELLED)
    refused(cancel(client, created["id"], "END_OF_PERIOD"), 400, ALREADY_CANCELLED)
    assert len(invoices(client, "imm")) == 2

    # the current period was billed but never paid: VOID, and no credit (INV-50)
    assert allowed(client, "unpaid", "projects")
    done(cancel(client, late["subscription"]["id"], "IMMEDIATE"))
    listed = invoices(client, "unpaid")
    assert [(i["status"], meta(i)[0]) for i in listed] == [("PAID", "INITIAL"), ("VOID", "RENEWAL")]
    assert listed[1]["modifiedAt"] == now
    assert "scheduledChange" not in listed[1]["subscription"]  # (f) the downgrade is CANCELLED
    assert listed[1]["subscription"]["plan"]["key"] == "pro_monthly"
    assert denial(client, "unpaid", "projects") == NO_SUBSCRIPTION
    # 06-01 rollover capped the plan credits at 250,000; the clawback reverses those
    assert totals(tokens(client, "unpaid")) == (0, 1_000_000, 0, 750000, 250000)
    assert pool(client, "unpaid")["status"] == "DEPLETED"
    advance(client, to="2025-07-02T00:00:00Z")
    assert len(invoices(client, "unpaid")) == 2
    assert len(invoices(client, "imm")) == 2
    assert money(invoices(client, "imm")[1]["amount"]) == Decimal("-32.67")
    assert only_sub_absent(client, "imm")


def only_sub_absent(client: Client, ref: str) -> bool:
    return bool(get_customer(client, ref)["subscriptions"] == [])
