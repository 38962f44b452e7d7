"""A demo edge agent for the kiosk: center B's meal hall and two classes, on a fixed clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path

from broker.hashing import credential_hash
from broker.models import ProgramSession, Roster, RosterMember
from broker.vocabulary import MemberStatus, NameDisplay, ProgramKind
from edge_agent.agent import EdgeAgent, utc_now
from edge_agent.config import EdgeSettings
from edge_agent.link import LinkServer

# Monday 2026-11-23, 12:05 in Seoul: lunch is being served and two classes are on.
DEMO_NOW = datetime(2026, 11, 23, 3, 5, tzinfo=UTC)
# Only for the demo and tests: a real kiosk gets its key provisioned, never from git.
DEMO_KEY = "demo-credential-key-not-for-production"
FACILITY_NAME = "행복종합사회복지관"

MEAL = "MEAL-LUNCH"
SONG = "CLASS-SONG"
PHONE = "CLASS-PHONE"

# Card UIDs as the demo's readers type them.
CARD_MEAL = "04A1B2C3"  # 김민수, meal
CARD_MEAL_2 = "04A1B2C4"  # 이영희, meal
CARD_INACTIVE = "04A1B2C5"  # 박정자, moved out
CARD_TWO_CLASSES = "04A1B2C6"  # 최순자, both classes
CARD_ONE_CLASS = "04A1B2C7"  # 정영수, singing class only
CARD_UNKNOWN = "0499FFEE"
BENCH_PREFIX = "BE"
# `welfare kiosk run --demo`: type a digit and Enter instead of tapping a card.
KEYBOARD_CARDS = {
    "1": CARD_MEAL,
    "2": CARD_MEAL_2,
    "3": CARD_INACTIVE,
    "4": CARD_TWO_CLASSES,
    "5": CARD_ONE_CLASS,
    "6": CARD_UNKNOWN,
}


def bench_card(i: int) -> str:
    """The card of bench member number `i`."""
    return f"{BENCH_PREFIX}{i:06X}"


def demo_roster(*, key: bytes, bench_members: int = 0) -> Roster:
    """Programs and members of the demo kiosk."""

    def card(uid: str) -> list[str]:
        """Hashed credentials of one card."""
        return [credential_hash(uid, key=key)]

    weekdays = [1, 2, 3, 4, 5]
    programs = [
        ProgramSession(
            program_id=MEAL,
            name="경로식당 점심",
            kind=ProgramKind.MEAL,
            weekdays=weekdays,
            starts=time(11, 30),
            ends=time(13, 0),
            capacity=300,
            place="1층 식당",
        ),
        ProgramSession(
            program_id=SONG,
            name="노래교실",
            kind=ProgramKind.CLASS,
            weekdays=weekdays,
            starts=time(11, 0),
            ends=time(12, 30),
            place="3층 강당",
        ),
        ProgramSession(
            program_id=PHONE,
            name="스마트폰 교실",
            kind=ProgramKind.CLASS,
            weekdays=weekdays,
            starts=time(11, 0),
            ends=time(12, 30),
            place="2층 교육실",
        ),
    ]
    members = [
        RosterMember(
            member_ref="M001",
            display_name="김민수",
            credential_hashes=card(CARD_MEAL),
            program_ids=[MEAL],
        ),
        RosterMember(
            member_ref="M002",
            display_name="이영희",
            credential_hashes=card(CARD_MEAL_2),
            program_ids=[MEAL],
        ),
        RosterMember(
            member_ref="M003",
            display_name="박정자",
            status=MemberStatus.MOVED_OUT,
            credential_hashes=card(CARD_INACTIVE),
            program_ids=[MEAL],
        ),
        RosterMember(
            member_ref="M004",
            display_name="최순자",
            credential_hashes=card(CARD_TWO_CLASSES),
            program_ids=[SONG, PHONE],
        ),
        RosterMember(
            member_ref="M005",
            display_name="정영수",
            credential_hashes=card(CARD_ONE_CLASS),
            program_ids=[SONG],
        ),
    ]
    members += [
        RosterMember(
            member_ref=f"B{i:06d}",
            display_name="홍길동",
            credential_hashes=card(bench_card(i)),
            program_ids=[MEAL],
        )
        for i in range(bench_members)
    ]
    return Roster(
        facility_id="B",
        device_id="kiosk-1",
        version="demo-1",
        issued_at=DEMO_NOW,
        programs=programs,
        members=members,
    )


@dataclass
class DemoAgent:
    """A running demo agent and its link."""

    agent: EdgeAgent
    server: LinkServer
    socket: Path


@asynccontextmanager
async def demo_agent(
    workdir: Path,
    *,
    bench_members: int = 0,
    name_display: NameDisplay = NameDisplay.MASKED,
    fixed_clock: bool = True,
    online: bool = True,
) -> AsyncIterator[DemoAgent]:
    """Start an in-process agent (no broker) serving the link on `workdir/link.sock`."""
    settings = EdgeSettings(
        facility_id="B",
        device_id="kiosk-1",
        facility_name=FACILITY_NAME,
        database=workdir / "edge.sqlite3",
        credential_key=DEMO_KEY,
        name_display=name_display,
        mqtt=None,
    )
    agent = EdgeAgent(settings, clock=(lambda: DEMO_NOW) if fixed_clock else utc_now)
    socket = workdir / "link.sock"
    async with agent:
        await agent.load_roster(demo_roster(key=DEMO_KEY.encode(), bench_members=bench_members))
        # No broker in the demo: pretend the center is reachable unless asked otherwise.
        agent.online = online
        async with LinkServer(agent, socket, status_interval=0.2) as server:
            yield DemoAgent(agent, server, socket)
