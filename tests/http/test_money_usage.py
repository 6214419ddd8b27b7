"""Issue 12, part B, over the public API: late usage priced in its own period (MNY-B1,
MNY-B2), sub-quantum credits carried (MNY-B3, MNY-B5), remainders allocated (MNY-B4), and usage
dated before the subscription started billed (MNY-B6)."""

from __future__ import annotations

from decimal import Decimal

from allotment.runtime.system import ActorSystem
from tests.http.helpers import (
    Client,
    advance,
    create_customer,
    event,
    grant,
    invoices,
    mark_paid,
    ok,
    plan_doc,
    put_catalog,
    subscribe,
)
from tests.http.lifecycle_support import change, done, lines, meta, money, tokens, use


def test_mny_b1_late_usage_is_priced_on_its_own_periods_ladder(
    client: Client, system: ActorSystem
) -> None:
    """MNY-B1, MNY-B2, INV-30, INV-33, AMB-23: 100 GB reported in February for January, plus
    100 GB for February, on the demo's graduated storage: 55 + 55 = 110.00, on two lines, the
    late one naming January's period. Merged, they billed 80.00 on February's ladder."""
    create_customer(client, "late")
    subscribe(client, "late", "usage_monthly")
    advance(client, to="2025-02-15T00:00:00Z")  # January's period closes with no usage
    use(client, "late", "jan", "storage_gb", 100, occurredAt="2025-01-20T00:00:00Z")
    use(client, "late", "feb", "storage_gb", 100)
    advance(client, to="2025-03-15T00:00:00Z")
    listed = invoices(client, "late")
    january, february = listed[0], listed[1]
    assert money(january["amount"]) == 0
    assert meta(february) == ("RENEWAL", "2025-02-15T00:00:00Z", "2025-03-15T00:00:00Z")
    assert (february["status"], money(february["amount"])) == ("DUE", Decimal(110))
    assert lines(system, "late", february["id"]) == [
        ("Late usage for storage_gb (period 2025-01-15 to 2025-02-15): 100 GB", Decimal(55)),
        ("Usage for storage_gb: 100 GB", Decimal(55)),
    ]


TINY = {
    "features": [{"key": "chat"}],
    "creditModels": [{"key": "tok", "denomination": "TOKENS", "hardLimit": True}],
}


def test_mny_b3_b5_tiny_events_debit_their_credits_and_respect_a_hard_limit(
    client: Client, system: ActorSystem
) -> None:
    """MNY-B3, MNY-B5, CRD-30, CRD-32, EVT-41, INV-37: events of 10 tokens at 0.0000025
    credits per token each owe 0.000025 credits, below the 4-decimal quantum. 0.001 credits
    pay for exactly 40 of them (they used to debit nothing, forever); from the 41st on, the
    hard-limited pool is empty, so each event is flagged and its tokens are billed."""
    chat = {"featureKey": "chat", "pricingType": "usage_based", "pricePerUnit": 0.01,
            "creditModelKey": "tok", "creditsPerUnit": 0.0000025}  # fmt: skip
    put_catalog(client, plan_doc("tiny_chat", features=[chat]), **TINY)
    create_customer(client, "tiny")
    subscribe(client, "tiny", "tiny_chat")
    assert ok(grant(client, "tiny", 0.001), 201)
    statuses = []
    for i in range(50):
        response = event(client, "tiny", f"t{i}", eventName="chat", featureKey="chat",
                         usageUnits=10)  # fmt: skip
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.json()["data"] == {
                "usageLimitExceeded": True,
                "message": "Credit pool depleted for 'TOKENS'.",
            }
    assert statuses == [201] * 40 + [200] * 10
    p = tokens(client, "tiny")
    assert (money(p["balance"]), money(p["totalConsumed"])) == (Decimal(0), Decimal("0.001"))
    advance(client, to="2025-02-15T00:00:00Z")
    first = invoices(client, "tiny")[0]
    assert lines(system, "tiny", first["id"]) == [("Usage for chat: 100 units", Decimal(1))]


def test_mny_b4_prorated_base_lines_sum_to_the_rounded_total(
    client: Client, system: ActorSystem
) -> None:
    """MNY-B4, INV-52, INV-42: an in-arrears upgrade from $10 to $20 one hour after the start
    prorates the base as 0.1545699 + 19.6908602 = 19.8454301 → 19.85. Rounded apart, the
    lines were 0.15 + 19.69 = 19.84, a cent short of their own total; largest remainder gives
    the cent to the first line."""
    put_catalog(client, plan_doc("small", priceAmount=10), plan_doc("big", priceAmount=20))
    create_customer(client, "prorated")
    sub = subscribe(client, "prorated", "small")
    advance(client, to="2025-01-15T11:30:00Z")
    done(change(client, sub["subscription"]["id"], "big", "UPGRADE"))
    advance(client, to="2025-02-15T00:00:00Z")
    first = invoices(client, "prorated")[0]
    assert money(first["amount"]) == Decimal("19.85")
    assert lines(system, "prorated", first["id"]) == [
        ("Plan base price: Small (prorated)", Decimal("0.16")),
        ("Plan base price: Big (prorated)", Decimal("19.69")),
    ]


def test_mny_b6_usage_dated_before_the_start_is_billed_once(
    client: Client, system: ActorSystem
) -> None:
    """MNY-B6, INV-30, AMB-23, EVT-24, ENT-20: an event dated before the subscription started
    is accepted (201) and billed by the first invoice, which used to finalise at 0 as PAID; no
    later invoice bills it again, and it counts toward no period's limit."""
    create_customer(client, "early")
    subscribe(client, "early", "usage_monthly")
    use(client, "early", "before", "api_calls", 1000, occurredAt="2025-01-10T00:00:00Z")
    check = ok(client.get("/api/v1/client/entitlements/early/api_calls"))
    assert check["usage"]["used"] == 0
    advance(client, to="2025-02-15T00:00:00Z")
    first = invoices(client, "early")[0]
    assert (first["status"], money(first["amount"])) == ("DUE", Decimal("1.50"))
    assert lines(system, "early", first["id"]) == [("Usage for api_calls: 1000 calls",
                                                      Decimal("1.50"))]  # fmt: skip
    done(mark_paid(client, first["id"]))
    advance(client, to="2025-03-15T00:00:00Z")
    second = invoices(client, "early")[1]
    assert (second["status"], money(second["amount"])) == ("PAID", Decimal(0))
