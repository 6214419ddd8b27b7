"""Due transitions fire without a request: from the clock advance (manual clock) and from the
sweep (system clock) — SCH-1, API-15 — and they are idempotent (SCH-2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import anyio
import pytest

from allotment.config import DEFAULT_CATALOG, DEFAULT_MODEL_PRICES, Settings
from allotment.domain.commands import GrantCredits
from allotment.domain.credits import GrantSource
from allotment.domain.facts import CreditsExpired
from allotment.domain.state import Profile
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.memory import MemoryJournal
from allotment.runtime.clock import ManualClock
from allotment.runtime.ports import CustomerLookup
from allotment.runtime.system import ActorSystem, ClockNotManual
from tests.conftest import START

pytestmark = pytest.mark.anyio


class SteppedClock:
    """A clock that reports itself as the system clock but moves only when told."""

    manual = False

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def _system(clock: ManualClock | SteppedClock, journal: MemoryJournal) -> ActorSystem:
    return ActorSystem(
        catalog=load_catalog(DEFAULT_CATALOG, START),
        clock=clock,
        prices=load_price_table(DEFAULT_MODEL_PRICES),
        settings=Settings(),
        journal_factory=lambda _env: journal,
        timer_interval_s=0.01,
    )


async def _customer_with_expiring_grant(system: ActorSystem, days: int) -> None:
    shard = system.shard("test")
    await shard.create_customer("c1", Profile(first_name="A"))
    expires = system.clock.now() + timedelta(days=days)
    await shard.command(
        CustomerLookup(external_id="c1"),
        GrantCredits(
            denomination="TOKENS",
            amount=Decimal(5),
            source=GrantSource.PROMOTION,
            expires_at=expires,
        ),
    )


def _expiries(journal: MemoryJournal) -> list[CreditsExpired]:
    return [fact for _, fact in journal.facts() if isinstance(fact, CreditsExpired)]


async def test_sch1_clock_advance_applies_due_transitions_before_returning() -> None:
    journal = MemoryJournal()
    system = _system(ManualClock(START), journal)
    await _customer_with_expiring_grant(system, days=1)
    assert await system.advance_clock(START + timedelta(hours=23)) == 0
    assert _expiries(journal) == []
    assert await system.advance_clock(START + timedelta(days=2)) == 1
    assert [f.at for f in _expiries(journal)] == [START + timedelta(days=1)]
    assert await system.advance_clock(START + timedelta(days=3)) == 0  # SCH-2: nothing twice
    assert len(_expiries(journal)) == 1


async def test_sch1_sweep_fires_for_a_customer_nobody_calls() -> None:
    journal = MemoryJournal()
    clock = SteppedClock(START)
    system = _system(clock, journal)
    await _customer_with_expiring_grant(system, days=1)
    async with system.running():
        clock.current = START + timedelta(days=1, seconds=1)
        with anyio.fail_after(5):
            while not _expiries(journal):  # noqa: ASYNC110 (polls a side effect of the sweep)
                await anyio.sleep(0.01)
    assert len(_expiries(journal)) == 1


async def test_advancing_a_system_clock_is_refused() -> None:
    system = _system(SteppedClock(START), MemoryJournal())
    with pytest.raises(ClockNotManual):
        await system.advance_clock(START + timedelta(days=1))


async def test_manual_clock_never_goes_backwards() -> None:
    system = _system(ManualClock(START), MemoryJournal())
    with pytest.raises(ValueError, match="forward"):
        await system.advance_clock(START - timedelta(seconds=1))
