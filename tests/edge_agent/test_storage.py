"""The device's disk: what happens when it fills is designed, not discovered.

Bytes per event are measured on a real day of taps; below its reserve the device frees what
the center confirmed (never an unconfirmed or parked event), and only when nothing can be kept
is a tap refused, with a message the member and staff see; the heartbeat says how many days of
offline taps the free space holds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.const import EVENT_BYTES
from edge_agent.models import TapResult
from edge_agent.store import STORAGE_FULL_MESSAGE
from tests.edge_agent.meal_hall import WEDGE_CARD
from tests.test_end_to_end import DAY, KEY, ReplayClock
from welfare.sample.centers import CENTERS, day_of_taps, people, roster_for

DOC = Path(__file__).parents[2] / "docs" / "contract.md"


def _size(path: Path) -> int:
    """The database's bytes on disk (its WAL included)."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def _day_at_center_b(tmp_path: Path) -> tuple[int, int]:
    """A real day of taps at center B's meal-hall kiosk: (events, bytes they took)."""
    from tests.edge_agent.conftest import edge_settings

    center = next(c for c in CENTERS if c.facility_id == "B")
    persons = people(center)
    clock = ReplayClock()
    settings = edge_settings(tmp_path, device_id="meal-1", credential_key=KEY.decode())
    async with EdgeAgent(settings.model_copy(update={"facility_id": "B"}), clock=clock) as agent:
        await agent.load_roster(roster_for(center, "meal-1", persons, key=KEY, issued_at=clock.at))
        await agent.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _size(settings.database)
        events = 0
        for week in range(8):  # eight Fridays, so page granularity does not dominate
            for tap in day_of_taps(center, "meal-1", persons, DAY + timedelta(weeks=week)):
                clock.at = tap.at
                await agent.tap(tap.card_uid)
                events += 1
        await agent.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        grown = _size(settings.database) - before
    return events, grown


async def test_bytes_per_event_match_the_constant_and_the_documented_days(
    tmp_path: Path,
) -> None:
    """Measured bytes per event are within 25 % of EVENT_BYTES; the doc's figure uses it."""
    events, grown = await _day_at_center_b(tmp_path)
    measured = grown / events
    print(f"{events} events took {grown} bytes: {measured:.0f} bytes per event")
    assert 0.75 * EVENT_BYTES <= measured <= 1.25 * EVENT_BYTES, measured
    text = DOC.read_text()
    stated = re.search(r"about (\d+) bytes per event", text)
    assert stated, "docs/contract.md lost its bytes-per-event figure"
    assert int(stated[1]) == EVENT_BYTES


async def test_a_full_disk_frees_what_the_center_holds_then_refuses_with_a_message(
    meal_agent: EdgeAgent,
) -> None:
    """Confirmed events make room; with none left the tap is refused aloud, nothing dropped."""
    shown: list[TapResult] = []
    meal_agent.add_listener(shown.append)
    store = meal_agent.store
    first = await meal_agent.tap(WEDGE_CARD)
    assert first.event_id is not None
    await store.acknowledge([first.event_id], at=0)  # the center holds it
    for _ in range(5):  # "already served": more events, none confirmed
        await meal_agent.tap(WEDGE_CARD)
    pending = {e.event_id for e in await store.all_events()} - {first.event_id}
    assert len(pending) == 5
    # The disk is full now: SQLite may grow the file no further.
    row = await (await store._db.execute("PRAGMA page_count")).fetchone()
    assert row is not None
    await store._db.execute(f"PRAGMA max_page_count = {int(row[0])}")
    kept = 0
    while True:  # the confirmed event's room is used, then nothing is left
        result = await meal_agent.tap(WEDGE_CARD)
        if result.problem is not None:
            break
        kept += 1
        assert kept < 500, "the database never filled"
    assert result.outcome is None
    assert result.problem == STORAGE_FULL_MESSAGE
    assert shown[-1] == result  # the views (screen, buzzer) were told
    assert meal_agent.storage_refusals == 1
    assert store.freed_for_room == 1  # only the confirmed one was freed
    left = {e.event_id for e in await store.all_events()}
    assert pending <= left  # no unconfirmed event was dropped to make room
    assert first.event_id not in left


async def test_below_the_reserve_a_tap_is_refused_before_sqlite_meets_the_full_disk(
    meal_agent: EdgeAgent,
) -> None:
    """A reserve larger than the free space: refused at once, with the message."""
    meal_agent.store.reserve_bytes = 2**62
    result = await meal_agent.tap(WEDGE_CARD)
    assert result.problem == STORAGE_FULL_MESSAGE
    assert await meal_agent.store.all_events() == []


@pytest.mark.parametrize(("free_mb", "expected"), [(0.0, 0.0), (64.0 + 30.0, None)])
async def test_the_heartbeat_says_how_many_days_the_free_space_holds(
    meal_agent: EdgeAgent, free_mb: float, expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """storage_days_left: the room above the reserve over a busy day's bytes."""
    from edge_agent import agent as agent_module
    from edge_agent.const import BUSY_DAY_EVENTS

    monkeypatch.setattr(agent_module, "disk_space", lambda _p: (free_mb, 16_000.0))
    health = await meal_agent.health()
    assert health.storage_days_left is not None
    room = max(0.0, free_mb - 64.0) * 1_048_576
    assert health.storage_days_left == pytest.approx(room / (EVENT_BYTES * BUSY_DAY_EVENTS))
    if expected is not None:
        assert health.storage_days_left == expected
