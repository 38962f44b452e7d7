"""Fixtures for the edge agent: a roster with a meal hall and two overlapping classes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from broker.hashing import credential_hash
from broker.models import ProgramSession, Roster, RosterMember
from broker.vocabulary import MemberStatus, ProgramKind
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings

# A realistic random-looking key: broker.config refuses placeholder-like ones.
KEY = b"7f3a9c1e5b2d48f6a0c3e9d17b4f2a86"
# Friday 2026-11-20 12:00 in Seoul: lunch is on, and so are two afternoon-overlapping classes.
LUNCH = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CARDS = {
    "meal": "04A1B2C3",
    "two_classes": "04D4E5F6",
    "moved": "04000001",
    "not_enrolled": "04000002",
}


def make_roster(facility_id: str = "B", device_id: str = "k1") -> Roster:
    """A small roster covering every decision."""

    def member(ref: str, card: str, programs: list[str], **kw: object) -> RosterMember:
        """A roster member holding `card`, enrolled in `programs`."""
        return RosterMember(
            member_ref=ref,
            display_name=kw.pop("name", "김순자"),
            credential_hashes=[credential_hash(card, key=KEY)],
            program_ids=programs,
            status=kw.pop("status", MemberStatus.ACTIVE),
        )

    return Roster(
        facility_id=facility_id,
        device_id=device_id,
        version="v1",
        issued_at=LUNCH,
        programs=[
            ProgramSession(
                program_id="MEAL",
                name="경로식당 점심",
                kind=ProgramKind.MEAL,
                weekdays=[1, 2, 3, 4, 5],
                starts=time(11, 30),
                ends=time(13, 0),
            ),
            ProgramSession(
                program_id="SING",
                name="노래교실",
                kind=ProgramKind.CLASS,
                weekdays=[5],
                starts=time(11, 0),
                ends=time(12, 30),
            ),
            ProgramSession(
                program_id="PAINT",
                name="미술교실",
                kind=ProgramKind.CLASS,
                weekdays=[5],
                starts=time(11, 0),
                ends=time(12, 30),
            ),
        ],
        members=[
            member("M1", CARDS["meal"], ["MEAL"]),
            member("M2", CARDS["two_classes"], ["SING", "PAINT"], name="이영호"),
            member("M3", CARDS["moved"], ["MEAL"], status=MemberStatus.MOVED_OUT),
            member("M4", CARDS["not_enrolled"], ["OTHER"]),
        ],
    )


class FakeClock:
    """A controllable clock (the kiosk's time is part of what is tested)."""

    def __init__(self, at: datetime) -> None:
        """Start at `at`."""
        self.at = at

    def __call__(self) -> datetime:
        """Now."""
        return self.at


def edge_settings(tmp_path: Path, **kw: object) -> EdgeSettings:
    """Settings of a test kiosk without a broker."""
    values: dict[str, object] = {
        "facility_id": "B",
        "device_id": "k1",
        "database": tmp_path / "edge.sqlite3",
        "credential_key": KEY.decode(),
        "mqtt": None,
    }
    values.update(kw)
    return EdgeSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    """A clock at Friday lunch."""
    return FakeClock(LUNCH)


@pytest.fixture
async def agent(tmp_path: Path, clock: FakeClock) -> AsyncIterator[EdgeAgent]:
    """A started agent with the test roster loaded."""
    async with EdgeAgent(edge_settings(tmp_path), clock=clock) as a:
        await a.load_roster(make_roster())
        yield a


@pytest.fixture
async def meal_agent(tmp_path: Path) -> AsyncIterator[EdgeAgent]:
    """A started agent at a meal-hall kiosk on Monday lunch (tests/edge_agent/meal_hall.py)."""
    # Imported here: meal_hall builds its settings with this module's edge_settings.
    from tests.edge_agent.meal_hall import meal_hall_agent

    async with meal_hall_agent(tmp_path) as started:
        yield started
