"""Billing lifecycle scenarios, part 4: in-arrears invoices with graduated tiers, and credit
rollover at period ends."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    Client,
    advance,
    create_customer,
    grant,
    invoices,
    mark_paid,
    ok,
    plan_doc,
    pool,
    put_catalog,
    subscribe,
)
from tests.http.lifecycle_support import (
    NO_SUBSCRIPTION,
    cancel,
    change,
    denial,
    done,
    lines,
    meta,
    money,
    tokens,
    totals,
    use,
)

BOUNDS = [f"2025-{month:02d}-15T00:00:00Z" for month in range(1, 8)]


def _finalised(client: Client, ref: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The n-th invoice (just finalised) and the (n+1)-th (the new PENDING one)."""
    listed = invoices(client, ref)
    assert len(listed) == n + 2
    closed, pending = listed[n], listed[n + 1]
    assert meta(pending) == ("RENEWAL", BOUNDS[n + 1], BOUNDS[n + 2])
    assert (pending["status"], money(pending["amount"])) == ("PENDING", Decimal(0))
    assert (pending["dueDate"], pending["createdAt"]) == (BOUNDS[n + 2], BOUNDS[n + 1])
    assert closed["dueDate"] == closed["modifiedAt"] == BOUNDS[n + 1]
    return closed, pending


def test_in_arrears_graduated_usage_is_finalised_at_period_end(
    client: Client, system: ActorSystem
) -> None:
    """SUB-19, SUB-32, SUB-33, SUB-46 (a, b), INV-5, INV-30, INV-32, INV-33, INV-35, INV-36,
    INV-41, AMB-14: each period end turns the PENDING invoice DUE with one line per metered
    feature (graduated slabs with the flat fee, at Q = 100, 101, 1000, 1001 spread over several
    events) and opens a new PENDING invoice due at the new period end; a total of 0 is PAID.
    IMMEDIATE cancel voids the DUE invoice and cancels the PENDING one: CANCELLED_PROCESSED with
    usage, CANCELLED without."""
    create_customer(client, "arr")
    first = subscribe(client, "arr", "usage_monthly")["invoice"]
    assert (first["status"], first["dueDate"]) == ("PENDING", BOUNDS[1])
    assert meta(first) == ("INITIAL", BOUNDS[0], BOUNDS[1])
    quantities = {0: (60, 40), 1: (50, 50, 1), 2: (999, 1), 3: (), 4: (1000, 1)}
    expected = {
        0: [("Usage for api_calls: 1000 calls", Decimal("1.50")),
            ("Usage for storage_gb: 100 GB", Decimal("55.00"))],  # 100 x 0.5 + 5
        1: [("Usage for storage_gb: 101 GB", Decimal("55.25"))],  # + 1 x 0.25
        2: [("Usage for storage_gb: 1000 GB", Decimal("280.00"))],  # 55 + 900 x 0.25
        3: [],
        4: [("Usage for storage_gb: 1001 GB", Decimal("280.10"))],  # + 1 x 0.1
    }  # fmt: skip
    for n, parts in quantities.items():
        if n == 0:
            use(client, "arr", "calls", "api_calls", 1000)
        for i, units in enumerate(parts):
            use(client, "arr", f"gb-{n}-{i}", "storage_gb", units)
        advance(client, to=BOUNDS[n + 1])
        closed, _pending = _finalised(client, "arr", n)
        assert lines(system, "arr", closed["id"]) == expected[n]
        total = sum((amount for _, amount in expected[n]), Decimal(0))
        assert money(closed["amount"]) == total
        if total == 0:
            assert closed["status"] == "PAID"  # SUB-33
        else:
            assert closed["status"] == "DUE"
            if n < 4:
                done(mark_paid(client, closed["id"]))
    assert [i["status"] for i in invoices(client, "arr")] == [
        "PAID", "PAID", "PAID", "PAID", "DUE", "PENDING"
    ]  # fmt: skip

    advance(client, to="2025-06-16T00:00:00Z")  # inside the DUE invoice's grace
    use(client, "arr", "late-calls", "api_calls", 10)
    sub_id = invoices(client, "arr")[0]["subscription"]["id"]
    done(cancel(client, sub_id, "IMMEDIATE"))
    *_, voided, processed = invoices(client, "arr")
    assert (voided["status"], money(voided["amount"])) == ("VOID", Decimal("280.10"))
    assert (processed["status"], money(processed["amount"])) == ("CANCELLED_PROCESSED", Decimal(0))
    assert len(invoices(client, "arr")) == 6  # no credit note for in-arrears plans
    assert denial(client, "arr", "api_calls") == NO_SUBSCRIPTION

    create_customer(client, "arr0")
    quiet = subscribe(client, "arr0", "usage_monthly")
    done(cancel(client, quiet["subscription"]["id"], "IMMEDIATE"))
    (cancelled,) = invoices(client, "arr0")
    assert (cancelled["status"], meta(cancelled)[0]) == ("CANCELLED", "INITIAL")


ROLLOVER_MODELS = {  # denomination: (rolloverPolicy, rolloverCap)
    "CR_NONE": ("NONE", None),
    "CR_FULL": ("FULL", None),
    "CR_CAP": ("CAPPED", 300),
    "CR_ZERO": ("CAPPED", 0),
    "CR_EXP": ("CAPPED", 300),  # its plan grants expire a month after they are granted
}


def _rollover_catalog(client: Client) -> None:
    features, models, links, allocations = [], [], [], []
    for denomination, (policy, cap) in ROLLOVER_MODELS.items():
        key = denomination.lower()
        features.append({"key": f"f_{key}"})
        model: dict[str, Any] = {"key": f"m_{key}", "denomination": denomination,
                                 "rolloverPolicy": policy}  # fmt: skip
        if cap is not None:
            model["rolloverCap"] = cap
        models.append(model)
        links.append({"featureKey": f"f_{key}", "pricingType": "usage_based", "pricePerUnit": 0,
                      "creditModelKey": f"m_{key}"})  # fmt: skip
        allocation: dict[str, Any] = {"creditModelKey": f"m_{key}", "creditAmount": 1000}
        if denomination == "CR_EXP":
            allocation["grantExpiresMonths"] = 1
        allocations.append(allocation)
    put_catalog(
        client,
        plan_doc("rollover", billingTiming="IN_ADVANCE", features=links,
                 creditAllocations=allocations),
        features=features, creditModels=models,
    )  # fmt: skip


def _all_totals(client: Client, ref: str) -> dict[str, tuple[object, ...]]:
    """(balance, granted, consumed, expired, reversed) per pool; CRD-3 checked on each, and
    the purchased grants checked untouched."""
    found = {d: totals(tokens(client, ref, d)) for d in ROLLOVER_MODELS}
    for denomination in ("CR_NONE", "CR_FULL", "CR_CAP"):
        grants = pool(client, ref, denomination, expand="grants")["grants"]
        assert [money(g["remaining"]) for g in grants if g["source"] == "PURCHASE"] == [50]
    return found


def test_rollover_none_full_capped_at_period_end(client: Client) -> None:
    """CRD-3, CRD-11, CRD-12, CRD-40, CRD-41, CRD-42, CRD-44, SUB-18, SUB-30 (step 3): at each
    period end NONE expires the subscription's remaining plan credits, FULL keeps them, CAPPED
    keeps at most the cap (oldest grants expire first; cap 0 acts as NONE); grants due to
    expire at the period end expire before the rollover; purchased credits are never touched;
    balance = granted - consumed - expired - reversed after every step."""
    _rollover_catalog(client)
    create_customer(client, "roll")
    subscribe(client, "roll", "rollover")
    advance(client, seconds=60)
    for denomination in ("CR_NONE", "CR_FULL", "CR_CAP"):
        ok(grant(client, "roll", 50, denomination=denomination), 201)
    for denomination, units in (("CR_NONE", 100), ("CR_FULL", 200), ("CR_CAP", 300)):
        use(client, "roll", f"use-{denomination}", f"f_{denomination.lower()}", units)
    for denomination, (policy, cap) in ROLLOVER_MODELS.items():
        p = pool(client, "roll", denomination)
        assert p["rolloverPolicy"] == policy
        assert (money(p["rolloverCap"]) if "rolloverCap" in p else None) == cap
    assert _all_totals(client, "roll") == {
        "CR_NONE": (950, 1050, 100, 0, 0),
        "CR_FULL": (850, 1050, 200, 0, 0),
        "CR_CAP": (750, 1050, 300, 0, 0),
        "CR_ZERO": (1000, 1000, 0, 0, 0),
        "CR_EXP": (1000, 1000, 0, 0, 0),
    }

    advance(client, to=BOUNDS[1])
    assert _all_totals(client, "roll") == {
        "CR_NONE": (1050, 2050, 100, 900, 0),
        "CR_FULL": (1850, 2050, 200, 0, 0),
        "CR_CAP": (1350, 2050, 300, 400, 0),  # 700 left, 300 carried
        "CR_ZERO": (1000, 2000, 0, 1000, 0),
        "CR_EXP": (1300, 2000, 0, 700, 0),  # the first grant expires at 10:30, not yet
    }
    advance(client, to="2025-02-15T10:30:00Z")  # CRD-42: the first CR_EXP grant's own expiry
    assert _all_totals(client, "roll")["CR_EXP"] == (1000, 2000, 0, 1000, 0)

    advance(client, to=BOUNDS[2])
    assert _all_totals(client, "roll") == {
        "CR_NONE": (1050, 3050, 100, 1900, 0),
        "CR_FULL": (2850, 3050, 200, 0, 0),
        "CR_CAP": (1350, 3050, 300, 1400, 0),  # 300 + 1000 left: the older 300 expire first
        "CR_ZERO": (1000, 3000, 0, 2000, 0),
        "CR_EXP": (1000, 3000, 0, 2000, 0),
    }
    cap_grants = pool(client, "roll", "CR_CAP", expand="grants")["grants"]
    assert sorted((g["source"], money(g["remaining"])) for g in cap_grants) == [
        ("PURCHASE", Decimal(50)), ("SUBSCRIPTION", Decimal(300)), ("SUBSCRIPTION", Decimal(1000))
    ]  # fmt: skip
    ledger = pool(client, "roll", "CR_EXP", expand="transactions")["transactions"]
    at_end = [(t["type"], money(t["amount"])) for t in ledger if t["createdAt"] == BOUNDS[2]]
    assert at_end == [
        ("EXPIRATION", Decimal(-1000)),
        ("GRANT", Decimal(1000)),
    ]  # CRD-44: expiry, then rollover


def test_in_arrears_upgrade_prorates_the_base_at_finalisation(
    client: Client, system: ActorSystem
) -> None:
    """SUB-64, SUB-66, INV-52: upgrading an in-arrears plan after 10 of 30 days issues no
    invoice; at the period end the base is round2(e x 10) + round2(r x 30) = 3.33 + 20.00 and
    the whole period's usage is priced with the plan in force at the end."""
    calls = {"featureKey": "api_calls", "pricingType": "usage_based", "unitLabel": "calls"}
    put_catalog(
        client,
        plan_doc("arrears_10", priceAmount=10, features=[{**calls, "pricePerUnit": 0.01}]),
        plan_doc("arrears_30", priceAmount=30, features=[{**calls, "pricePerUnit": 0.005}]),
    )
    advance(client, to="2025-04-01T09:00:00Z")
    create_customer(client, "arrup")
    sub_id = subscribe(client, "arrup", "arrears_10")["subscription"]["id"]
    use(client, "arrup", "c1", "api_calls", 60)
    advance(client, to="2025-04-11T00:00:00Z")
    done(change(client, sub_id, "arrears_30", "UPGRADE"))
    (pending,) = invoices(client, "arrup")  # no adjustment invoice
    assert pending["status"] == "PENDING"
    use(client, "arrup", "c2", "api_calls", 40)
    advance(client, to="2025-05-01T00:00:00Z")
    closed = invoices(client, "arrup")[0]
    assert meta(closed) == ("INITIAL", "2025-04-01T00:00:00Z", "2025-05-01T00:00:00Z")
    assert (closed["status"], money(closed["amount"])) == ("DUE", Decimal("23.83"))
    assert lines(system, "arrup", closed["id"]) == [
        ("Plan base price: Arrears 10 (prorated)", Decimal("3.33")),
        ("Plan base price: Arrears 30 (prorated)", Decimal("20.00")),
        ("Usage for api_calls: 100 calls", Decimal("0.50")),
    ]
    renewal = invoices(client, "arrup")[1]
    assert (renewal["status"], money(renewal["amount"])) == ("PENDING", Decimal(30))
