"""The blocking client's reservations against a real `allotment serve` (demo catalog): the
hold as a context manager (RSV-40..RSV-45) over the server's rules (RSV-1..RSV-29)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from allotment.client import (
    BadRequest,
    Client,
    Conflict,
    HoldItem,
    NotFound,
    PreflightReserve,
    ReservationDenied,
)
from tests.reliability.server import KEY, Server

README = Path(__file__).parents[2] / "README.md"


def _customer(client: Client, ref: str | None = None, plan_key: str = "free") -> str:
    """A customer subscribed to `plan_key` (free: api_calls limited to 1,000 a period)."""
    ref = ref or f"cust_{uuid.uuid4().hex[:12]}"
    client.create_customer(ref, first_name="Ada", last_name="L", email="ada@example.com")
    plan = next(p for p in client.list_plans() if p.plan.key == plan_key)
    subscribed = client.create_subscription(ref, plan.plan.id)
    if subscribed.invoice.status == "DUE":
        client.mark_invoice_paid(subscribed.invoice.id)
    return ref


def _used(client: Client, ref: str, feature: str = "api_calls") -> tuple[Decimal, Decimal]:
    usage = client.check_entitlement(ref, feature).usage
    assert usage is not None
    return usage.used, usage.reserved or Decimal(0)


def test_leaving_the_block_commits_the_units_set(client: Client) -> None:
    """RSV-41, RSV-12: one event of the units set; the hold is released in the same turn."""
    ref = _customer(client)
    with client.reserve(ref, "api_calls", 600, ttl_seconds=600) as hold:
        assert hold.reservation.status == "HELD"
        assert _used(client, ref) == (Decimal(0), Decimal(600))  # RSV-8: held, not used
        hold.usage_units = 420
    assert hold.settled and hold.reservation.status == "COMMITTED"
    assert _used(client, ref) == (Decimal(420), Decimal(0))
    assert client.list_reservations(ref) == []
    [item] = client.get_reservation(hold.id).items
    assert item.recorded_units == Decimal(420)


def test_without_usage_set_the_held_units_are_committed(client: Client) -> None:
    """RSV-41: a forgotten set_usage bills what was announced, never nothing."""
    ref = _customer(client)
    with client.reserve(ref, "api_calls", Decimal("12.5")):
        assert _used(client, ref) == (Decimal(0), Decimal("12.5"))  # RSV-8: held, not used
    assert _used(client, ref) == (Decimal("12.5"), Decimal(0))


def test_an_exception_releases_the_hold_and_propagates(client: Client) -> None:
    """RSV-43, RSV-19: nothing recorded, nothing held, the body's exception unchanged."""
    ref = _customer(client)
    with (  # noqa: PT012 (the exception must come from inside the hold's block)
        pytest.raises(TimeoutError, match="the model timed out"),
        client.reserve(ref, "api_calls", 600) as hold,
    ):
        hold.usage_units = 300
        raise TimeoutError("the model timed out")
    assert hold.reservation.status == "RELEASED"
    assert _used(client, ref) == (Decimal(0), Decimal(0))
    assert client.get_reservation(hold.id).status == "RELEASED"


def test_a_denied_reserve_raises_and_the_block_never_runs(client: Client) -> None:
    """RSV-42, RSV-5: 600 held of 1,000, a second 600 is denied; nothing more is held."""
    ref = _customer(client)
    ran = []
    with client.reserve(ref, "api_calls", 600) as first:
        with pytest.raises(ReservationDenied) as denied:  # noqa: SIM117 (the block must not run)
            with client.reserve(ref, "api_calls", 600):
                ran.append(True)
        first.release()
    assert ran == []
    assert not denied.value.decision.is_allowed and denied.value.decision.reason
    assert _used(client, ref) == (Decimal(0), Decimal(0))


def test_settled_inside_the_block_is_left_alone(client: Client) -> None:
    """RSV-44, RSV-15: an explicit commit is the only one; leaving sends nothing more."""
    ref = _customer(client)
    with client.reserve(ref, "api_calls", 50, reservation_id=f"{ref}-r") as hold:
        result = hold.commit(40)
    assert result.events[0].recorded_units == Decimal(40) and not result.hold_expired
    assert _used(client, ref) == (Decimal(40), Decimal(0))
    again = client.commit_reservation(f"{ref}-r", 40)  # RSV-15: the original answer
    assert again.events == result.events


def test_a_refused_commit_on_leaving_raises_and_the_hold_stays(client: Client) -> None:
    """RSV-45, RSV-14: overage `reject` over the held units is a 409; the hold stays HELD."""
    ref = _customer(client)
    with (
        pytest.raises(Conflict) as refused,
        client.reserve(ref, "api_calls", 10, overage="reject") as hold,
    ):
        hold.usage_units = 11
    assert refused.value.status == 409
    assert client.get_reservation(hold.id).status == "HELD"
    assert hold.commit(10).reservation.status == "COMMITTED"


def test_read_extend_and_list(client: Client) -> None:
    """RSV-20..RSV-22 through the client; another customer's id is a 404 (RSV-28)."""
    ref = _customer(client)
    hold = client.reserve(ref, "api_calls", 5, ttl_seconds=60, reservation_id=f"{ref}-x")
    assert [r.id for r in client.list_reservations(ref)] == [f"{ref}-x"]
    before = hold.expires_at
    extended = hold.extend(3600)
    assert before is not None and extended.expires_at is not None and extended.expires_at > before
    with pytest.raises(NotFound):
        client.get_reservation(f"{ref}-x", customer_reference_id=_customer(client))
    hold.release()
    assert client.list_reservations(ref, status="RELEASED")[0].id == f"{ref}-x"


def test_bad_input_names_the_field(client: Client) -> None:
    """RSV-3, RSV-2, RSV-46: units and ttlSeconds out of range are 400s naming the field."""
    ref = _customer(client)
    with pytest.raises(BadRequest) as bad:
        client.reserve(ref, "api_calls", 0)
    assert bad.value.field == "units"
    with pytest.raises(BadRequest) as bad:
        client.reserve(ref, "api_calls", 1, ttl_seconds=86401)
    assert bad.value.field == "ttlSeconds"
    assert client.list_reservations(ref) == []


def test_a_preflight_reservation_settles_through_hold(client: Client) -> None:
    """RSV-36, RSV-41: a pre-flight holds all items; `hold` commits them on leaving."""
    ref = _customer(client, plan_key="starter_monthly")
    items = [
        HoldItem(feature_key="api_calls", units=100),
        HoldItem(feature_key="ai_chat", units=2000),
    ]
    answer = client.preflight(ref, items, reserve=PreflightReserve(reservation_id=f"{ref}-p"))
    assert answer.is_allowed and answer.reservation is not None
    assert answer.estimated_total is not None and answer.estimated_total.currency == "USD"
    with client.hold(answer.reservation.id) as hold:
        hold.set_usage(80, feature_key="api_calls")
        hold.set_usage(1500, feature_key="ai_chat")
    assert _used(client, ref) == (Decimal(80), Decimal(0))
    assert _used(client, ref, "ai_chat") == (Decimal(1500), Decimal(0))


def test_the_readme_example_runs(server: Server) -> None:
    """The README's Python client section, run as written with a stand-in model."""
    [code] = re.findall(r"## The Python client.*?```python\n(.*?)```", README.read_text(), re.S)
    code = code.replace("http://127.0.0.1:8080", server.url)
    with Client(server.url, KEY) as setup:
        _customer(setup, "user_456", "pro_monthly")
    usage = SimpleNamespace(total_tokens=1830, input_tokens=1200, output_tokens=630)
    llm = SimpleNamespace(chat=lambda prompt, max_tokens: SimpleNamespace(usage=usage))
    exec(code, {"api_key": KEY, "llm": llm, "prompt": "hello", "print": print})
    with Client(server.url, KEY) as check:
        credit = check.check_entitlement("user_456", "ai_chat").credit
        assert credit is not None and credit.total_consumed == Decimal(1830)
