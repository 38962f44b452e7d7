"""A meal-hall kiosk at Monday lunch: its roster, cards as readers report them, its agent.

Shared by the tests of the drivers (tests/hardware) and of the agent's wiring of them
(tests/edge_agent/test_devices.py, test_face.py), so a tap through any reader meets the same
members.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time
from pathlib import Path

from broker.hashing import credential_hash
from broker.models import ProgramSession, ReaderState, Roster, RosterMember
from broker.vocabulary import ProgramKind
from edge_agent.agent import EdgeAgent
from edge_agent.devices import ReaderHub
from tests.edge_agent.conftest import edge_settings

# A realistic random-looking key: broker.config refuses placeholder-like ones.
KEY = "c4e81b7a29f05d36e1a8b4c70d9f3e25"
# Monday 2026-11-23 12:00 in Seoul: the meal hall is serving lunch.
LUNCH = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
# Cards as readers report them: a 125 kHz card by its printed 10-digit number, an NFC card
# by its 7-byte UID, a FeliCa card by its IDm; the member 'M4' is only known by face.
WEDGE_CARD = "0012345678"
NFC_UID = "04497622D93881"
FELICA_IDM = "0102030405060708"


def make_roster() -> Roster:
    """One meal program and members identified by card, NFC, FeliCa or face."""

    def member(ref: str, name: str, *cards: str) -> RosterMember:
        """An active meal-hall member holding `cards`."""
        return RosterMember(
            member_ref=ref,
            display_name=name,
            credential_hashes=[credential_hash(c, key=KEY.encode()) for c in cards],
            program_ids=["MEAL"],
        )

    return Roster(
        facility_id="B",
        device_id="kiosk-1",
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
            )
        ],
        members=[
            member("M1", "김순자", WEDGE_CARD),
            member("M2", "이영호", NFC_UID),
            member("M3", "박말순", FELICA_IDM),
            member("M4", "최복례"),
        ],
    )


@asynccontextmanager
async def meal_hall_agent(tmp_path: Path) -> AsyncIterator[EdgeAgent]:
    """A started edge agent without a broker, roster loaded, clock fixed at lunch."""
    settings = edge_settings(tmp_path, device_id="kiosk-1", credential_key=KEY)
    async with EdgeAgent(settings, clock=lambda: LUNCH) as started:
        await started.load_roster(make_roster())
        yield started


async def wait_for(check: Callable[[], bool], *, within_s: float = 10.0, what: str = "") -> None:
    """Poll `check` on the event loop until true, or fail naming `what`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what or check}")
        await asyncio.sleep(0.02)


class RecordingHub(ReaderHub):
    """A hub that keeps every health change, in order."""

    def __init__(self, agent: EdgeAgent) -> None:
        """Deliver to `agent`."""
        super().__init__(agent)
        self.history: list[ReaderState] = []

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Record, then pass on."""
        self.history.append(state)
        super().reader_state(reader, state)
