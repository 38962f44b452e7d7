"""Realistic, reproducible data of the brief's five centers for the demo, tests and benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broker.const import DEFAULT_TIMEZONE
from broker.hashing import credential_hash
from broker.models import ProgramSession, Roster, RosterMember
from broker.vocabulary import MemberStatus, ProgramKind

SEOUL = ZoneInfo(DEFAULT_TIMEZONE)  # every sample center keeps Korean time
_SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
_GIVEN = "민서지현수영정숙순자옥희미경은혜진성철호준석동혁재우태광명"


@dataclass(frozen=True)
class Center:
    """One of the brief's five centers with its kiosks and programs."""

    facility_id: str
    name: str
    members: int
    programs: tuple[ProgramSession, ...]
    kiosks: dict[str, tuple[str, ...]]  # device id -> program ids it serves


def _meal(pid: str, name: str, capacity: int, days: list[int] | None = None) -> ProgramSession:
    """A meal-hall sitting, 11:30-13:00."""
    return ProgramSession(
        program_id=pid,
        name=name,
        kind=ProgramKind.MEAL,
        weekdays=days or [1, 2, 3, 4, 5, 6],
        starts=time(11, 30),
        ends=time(13, 0),
        capacity=capacity,
        place="경로식당",
    )


def _class(
    pid: str, name: str, days: list[int], start: int, end: int, place: str
) -> ProgramSession:
    """A class session on whole hours."""
    return ProgramSession(
        program_id=pid,
        name=name,
        kind=ProgramKind.CLASS,
        weekdays=days,
        starts=time(start),
        ends=time(end),
        capacity=25,
        place=place,
    )


CENTERS: tuple[Center, ...] = (
    Center(
        "A",
        "새빛종합사회복지관",
        260,
        (
            _class("A-ENG", "어린이 영어교실", [1, 2, 3, 4, 5], 15, 17, "2층 교육실"),
            _class("A-CODE", "청소년 코딩교실", [1, 2, 3, 4, 5], 15, 17, "3층 전산실"),
            _class("A-YOGA", "엄마랑 요가", [1, 2, 3, 4, 5], 10, 11, "강당"),
        ),
        {"door-1": ("A-ENG", "A-CODE", "A-YOGA")},
    ),
    Center(
        "B",
        "한마음종합사회복지관",
        420,
        (_meal("B-MEAL", "경로식당 점심", 360),),
        {"meal-1": ("B-MEAL",), "meal-2": ("B-MEAL",)},
    ),
    Center(
        "C",
        "늘푸른사회복지관",
        150,
        (
            _meal("C-MEAL", "경로식당 점심", 120),
            _class("C-EXER", "어르신 건강체조", [1, 3, 5], 10, 11, "강당"),
        ),
        {"hall-1": ("C-MEAL", "C-EXER")},
    ),
    Center(
        "D",
        "큰나무종합사회복지관",
        900,
        (
            _meal("D-MEAL", "경로식당 점심", 350),
            _class("D-SWIM", "아침 수영", [1, 2, 3, 4, 5], 6, 9, "수영장"),
            _class("D-TT", "탁구교실", [1, 2, 3, 4, 5], 14, 16, "체육관"),
            _class("D-PIANO", "성인 피아노", [1, 2, 3, 4, 5], 14, 16, "음악실"),
        ),
        {"meal-1": ("D-MEAL",), "sports-1": ("D-SWIM", "D-TT"), "class-1": ("D-PIANO", "D-TT")},
    ),
    Center(
        "E",
        "푸른마을사회복지관",
        260,
        (_meal("E-MEAL", "경로식당 점심", 240),),
        {"meal-1": ("E-MEAL",)},
    ),
)


@dataclass
class Person:
    """A generated member: the card UID stays with the demo, only its hash goes on the roster."""

    member_ref: str
    name: str
    card_uid: str
    status: MemberStatus
    program_ids: list[str] = field(default_factory=list)


def korean_name(rng: random.Random) -> str:
    """A plausible Korean name."""
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)


def people(center: Center, *, seed: int = 7) -> list[Person]:
    """The members of a center, with enrolments; a few moved out or deceased."""
    rng = random.Random(f"{seed}-{center.facility_id}")  # noqa: S311 - simulation, not crypto
    result = []
    for i in range(center.members):
        status = MemberStatus.ACTIVE
        roll = rng.random()
        if roll < 0.01:
            status = MemberStatus.DECEASED
        elif roll < 0.03:
            status = MemberStatus.MOVED_OUT
        meals = [p.program_id for p in center.programs if p.kind is ProgramKind.MEAL]
        classes = [p.program_id for p in center.programs if p.kind is ProgramKind.CLASS]
        # Where there are classes, only the older members also eat at the meal hall.
        programs = meals if not classes or rng.random() < 0.35 else []
        if classes and (not programs or rng.random() < 0.5):
            programs = programs + rng.sample(classes, k=min(len(classes), rng.choice([1, 1, 2])))
        result.append(
            Person(
                member_ref=f"{center.facility_id}-M{i + 1:05d}",
                name=korean_name(rng),
                card_uid=f"{rng.getrandbits(32):08X}",
                status=status,
                program_ids=programs,
            )
        )
    return result


def roster_for(
    center: Center, device_id: str, persons: list[Person], *, key: bytes, issued_at: datetime
) -> Roster:
    """The roster of one kiosk: its programs and the members enrolled in them."""
    served = set(center.kiosks[device_id])
    programs = [p for p in center.programs if p.program_id in served]
    members = [
        RosterMember(
            member_ref=p.member_ref,
            display_name=p.name,
            status=p.status,
            credential_hashes=[credential_hash(p.card_uid, key=key)],
            program_ids=[pid for pid in p.program_ids if pid in served],
        )
        for p in persons
        if served & set(p.program_ids)
    ]
    return Roster(
        facility_id=center.facility_id,
        device_id=device_id,
        version=f"{center.facility_id}-{issued_at:%Y%m%d%H%M}",
        issued_at=issued_at,
        programs=programs,
        members=members,
    )


@dataclass(frozen=True, slots=True)
class Tap:
    """A card presented at a kiosk at a moment of the day."""

    at: datetime
    card_uid: str


def day_of_taps(
    center: Center, device_id: str, persons: list[Person], day: date, *, seed: int = 11
) -> list[Tap]:
    """A realistic day at one kiosk: lunch rush, class arrivals, repeats and strangers."""
    rng = random.Random(f"{seed}-{center.facility_id}-{device_id}-{day}")  # noqa: S311
    served = center.kiosks[device_id]
    sessions = [p for p in center.programs if p.program_id in served]
    kiosks_sharing = [d for d, ps in center.kiosks.items() if set(ps) & set(served)]
    taps: list[Tap] = []
    for person in persons:
        mine = [s for s in sessions if s.program_id in person.program_ids]
        for session in mine:
            if day.isoweekday() not in session.weekdays:
                continue
            # Split people between kiosks serving the same program (two meal-hall readers).
            if kiosks_sharing.index(device_id) != int(person.member_ref[-5:]) % len(kiosks_sharing):
                continue
            if rng.random() > (0.8 if session.kind is ProgramKind.MEAL else 0.7):
                continue
            start = datetime.combine(day, session.starts, SEOUL)
            # The rush: most arrive in the first 40 minutes.
            offset = min(rng.expovariate(1 / 900), 3600 * 1.2)
            at = start + timedelta(seconds=offset)
            taps.append(Tap(at.astimezone(UTC), person.card_uid))
            if rng.random() < 0.05:  # comes back for a second meal, or taps twice
                taps.append(
                    Tap(
                        (at + timedelta(seconds=rng.randint(5, 900))).astimezone(UTC),
                        person.card_uid,
                    )
                )
    for _ in range(max(1, len(taps) // 100)):  # a visitor's transit card, a lost card
        session = rng.choice(sessions)
        at = datetime.combine(day, session.starts, SEOUL) + timedelta(minutes=rng.randint(0, 50))
        taps.append(Tap(at.astimezone(UTC), f"{rng.getrandbits(56):014X}"))
    taps.sort(key=lambda t: t.at)
    return taps
