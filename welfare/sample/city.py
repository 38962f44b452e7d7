"""Generated registry and attendance for the five centers (tests, benchmarks, demo figures).

Builds on welfare.sample.centers (the same centers and programs) and adds what the figures need:
the program hierarchy and counting rules, members' gender, birth date and neighbourhood, people
registered at two centers, one-off visitors, community contacts, a practicum and an excluded
one-off event.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from broker.models import ProgramSession
from broker.vocabulary import AGE_BANDS, ConsentKind, ProgramKind
from ingest_api.core.fieldcrypto import FieldCipher
from ingest_api.registry import store
from ingest_api.registry.models import Consent, ContactIn, Facility, MemberIn, Program, Targets
from welfare.sample.centers import CENTERS, SEOUL, Center, korean_name, people

NEIGHBOURHOODS = ("우만1동", "우만2동", "인계동", "매탄1동", "매탄2동", "영통1동", "권선1동")
_EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "facility_id",
    "device_id",
    "service_date",
    "program_id",
    "member_ref",
    "method",
    "outcome",
    "visitor",
)
# Hierarchy of the kiosk programs of welfare.sample.centers: function, business area, unit, fee.
_HIERARCHY: dict[str, tuple[str, str, str, str]] = {
    "A-ENG": ("service_provision", "교육문화", "아동청소년 교육", "paid"),
    "A-CODE": ("service_provision", "교육문화", "아동청소년 교육", "paid"),
    "A-YOGA": ("service_provision", "교육문화", "평생교육", "paid"),
    "C-EXER": ("service_provision", "지역사회보호", "건강증진", "free"),
    "D-SWIM": ("service_provision", "교육문화", "사회체육", "paid"),
    "D-TT": ("service_provision", "교육문화", "사회체육", "paid"),
    "D-PIANO": ("service_provision", "교육문화", "평생교육", "paid"),
}
_MEAL = ("service_provision", "지역사회보호", "급식지원서비스", "free")
# What the centers' forms carry beside the figures, by business area: team, person in charge,
# indicator text and operating form (the people are invented).
_FORM_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "지역사회보호": ("지역복지팀", "김은정", "경로식당 식사 이용 연인원 (1인 1일 1회)", "상시"),
    "교육문화": ("교육문화팀", "박준호", "프로그램 출석 연인원 (1인 1일 1회)", "정기"),
    "사례관리": ("사례관리팀", "이수진", "대상자 1인 1일 상담 = 1건", "수시"),
    "주민조직화": ("지역조직팀", "최민규", "주민만남 활동일 1일 = 1건", "정기"),
    "교육사업": ("기획운영팀", "정하늘", "실습생 1인 1일 = 연인원 1, 실습일 1일 = 1건", "정기"),
}


@dataclass
class SampleProgram:
    """A program of the sample with its schedule and targets."""

    program: Program
    targets: Targets
    weekdays: tuple[int, ...]
    starts: time
    rate: float  # chance an enrolled member comes on a session day
    months: tuple[int, ...] = tuple(range(1, 13))


@dataclass
class CitySample:
    """Everything the generator makes for one year."""

    year: int
    facilities: list[Facility]
    programs: list[SampleProgram]
    members: list[MemberIn]
    contacts: list[ContactIn] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)


def _program(center: Center, session: ProgramSession) -> SampleProgram:
    """A kiosk program of welfare.sample.centers placed in the hierarchy."""
    function, area, unit, fee = (
        _MEAL if session.kind is ProgramKind.MEAL else _HIERARCHY[session.program_id]
    )
    program = Program(
        program_id=session.program_id,
        facility_id=center.facility_id,
        name=session.name,
        function=function,
        business_area=area,
        unit_business=unit,
        cycle="주" + str(len(session.weekdays)) + "회",
        place=session.place or "",
        capacity=session.capacity,
        fee_type=fee,
        **_form_fields(area),
    )
    return SampleProgram(
        program,
        Targets(
            unique_persons=20,
            person_visits=2000,
            cases=250,
            unique_persons_male=8,
            unique_persons_female=12,
        ),
        tuple(session.weekdays),
        session.starts,
        0.8 if session.kind is ProgramKind.MEAL else 0.6,
    )


def _form_fields(area: str) -> dict[str, str]:
    """Team, person in charge, indicator and operating form of a program in `area`."""
    team, manager, indicator, form = _FORM_FIELDS[area]
    return {"team": team, "manager": manager, "indicator": indicator, "operating_form": form}


def _extra_programs(center: Center) -> list[SampleProgram]:
    """Case management, organizing, practicum and an excluded event at every center."""
    f = center.facility_id

    def make(pid: str, name: str, function: str, area: str, unit: str, rule: str) -> Program:
        return Program(
            program_id=f"{f}-{pid}",
            facility_id=f,
            name=name,
            function=function,
            business_area=area,
            unit_business=unit,
            fee_type="free",
            rule_id=rule,
            **_form_fields(area),
        )

    return [
        SampleProgram(
            make(
                "CASE",
                "사례관리 상담",
                "case_management",
                "사례관리",
                "사례관리사업",
                "consultation",
            ),
            Targets(unique_persons=10, person_visits=100, cases=100),
            (2, 4),
            time(10),
            0.15,
        ),
        SampleProgram(
            make("NET", "주민만남", "community_organizing", "주민조직화", "주민만남", "attendance"),
            Targets(person_visits=50, cases=20),
            (3,),
            time(14),
            0.0,
        ),
        SampleProgram(
            make(
                "PRAC", "사회복지현장실습", "service_provision", "교육사업", "현장실습", "practicum"
            ),
            Targets(person_visits=480, cases=40),
            (1, 2, 3, 4, 5),
            time(9),
            0.0,
        ),
        SampleProgram(
            make(
                "FEST",
                "주민 한마당 (일회성 행사)",
                "community_organizing",
                "주민조직화",
                "행사",
                "excluded",
            ),
            Targets(),
            (6,),
            time(11),
            0.3,
        ),
    ]


def build_city(*, year: int, members_per_center: int = 30, seed: int = 3) -> CitySample:
    """The five centers' registry and a year of attendance, reproducibly."""
    rng = random.Random(f"{seed}-{year}")  # noqa: S311 - simulation, not crypto
    facilities = [Facility(facility_id=c.facility_id, name=c.name) for c in CENTERS]
    programs: list[SampleProgram] = []
    members: list[MemberIn] = []
    for center in CENTERS:
        own = [_program(center, s) for s in center.programs] + _extra_programs(center)
        programs += own
        attendable = [p for p in own if p.rate > 0]
        for i in range(members_per_center):
            birth = date(rng.randint(1935, 2015), rng.randint(1, 12), rng.randint(1, 28))
            chosen = rng.sample(attendable, k=rng.choice([1, 1, 2]) if len(attendable) > 1 else 1)
            fees = {
                p.program.program_id: (
                    "reduced" if p.program.fee_type == "paid" and rng.random() < 0.3 else None
                )
                for p in chosen
            }
            members.append(
                MemberIn(
                    member_ref=f"{center.facility_id}-S{i + 1:04d}",
                    facility_id=center.facility_id,
                    display_name=korean_name(rng),
                    gender=rng.choice(["M", "F", "F"]),
                    birth_date=birth if rng.random() > 0.05 else None,
                    recipient=rng.random() < 0.2,
                    neighbourhood=rng.choice(NEIGHBOURHOODS) if rng.random() > 0.05 else None,
                    card_uids=[f"{rng.getrandbits(32):08X}"],
                    programs=fees,
                    # Collection and provision to the city (its duplicate-service view).
                    consents=[
                        Consent(kind=ConsentKind.PRIVACY, granted_on=date(year, 1, 2)),
                        Consent(kind=ConsentKind.TRANSFER, granted_on=date(year, 1, 2)),
                    ],
                )
            )
    # People registered at two centers (same name and birth date): one person for the city.
    by_center = {
        c.facility_id: [m for m in members if m.facility_id == c.facility_id] for c in CENTERS
    }
    for src, dst in (("B", "E"), ("C", "B"), ("A", "D")):
        for n, original in enumerate(by_center[src][:3]):
            if original.birth_date is None:
                continue
            dst_programs = [
                p.program.program_id
                for p in programs
                if p.program.facility_id == dst and p.rate > 0
            ][:1]
            members.append(
                original.model_copy(
                    update={
                        "member_ref": f"{dst}-X{src}{n + 1:03d}",
                        "facility_id": dst,
                        "card_uids": [f"{rng.getrandbits(32):08X}"],
                        "programs": dict.fromkeys(dst_programs),
                    }
                )
            )
    sample = CitySample(year, facilities, programs, members)
    sample.events = list(_events(sample, rng))
    sample.contacts = _contacts(sample, rng)
    return sample


def _at(day: date, start: time, rng: random.Random) -> datetime:
    """A moment in the first hour of a session, in UTC."""
    local = datetime.combine(day, start, SEOUL) + timedelta(seconds=rng.randint(0, 3600))
    return local.astimezone(UTC)


def _event(
    *,
    f: str,
    day: date,
    at: datetime,
    program: str | None,
    ref: str | None,
    outcome: str,
    visitor: dict[str, str] | None = None,
) -> tuple[Any, ...]:
    """One attendance_events row (UUIDv7 id carrying the time)."""
    ms = int(at.timestamp() * 1000)
    rand = random.getrandbits(74)
    value = ms << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    at_ms = datetime.fromtimestamp(ms / 1000, tz=UTC)
    method = "staff" if visitor else "card"
    return (
        uuid.UUID(int=value),
        at_ms,
        f,
        "gen-1",
        day,
        program,
        ref,
        method,
        outcome,
        Jsonb(visitor) if visitor else None,
    )


def _events(sample: CitySample, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """A year of kiosk decisions: attendances, repeats refused, strangers, visitors."""
    enrolled: dict[str, list[str]] = {}
    for m in sample.members:
        for pid in m.programs:
            enrolled.setdefault(pid, []).append(m.member_ref)
    day = date(sample.year, 1, 1)
    visitor_no = 0
    while day.year == sample.year:
        for sp in sample.programs:
            p = sp.program
            if day.isoweekday() not in sp.weekdays or sp.rate == 0:
                continue
            for ref in enrolled.get(p.program_id, []):
                if rng.random() > sp.rate:
                    continue
                at = _at(day, sp.starts, rng)
                yield _event(
                    f=p.facility_id,
                    day=day,
                    at=at,
                    program=p.program_id,
                    ref=ref,
                    outcome="accepted",
                )
                if rng.random() < 0.05:  # a second tap: refused, must not count
                    yield _event(
                        f=p.facility_id,
                        day=day,
                        at=at + timedelta(seconds=30),
                        program=p.program_id,
                        ref=ref,
                        outcome="already_served",
                    )
                if rng.random() < 0.02:  # a class taken twice in a day (two sessions)
                    yield _event(
                        f=p.facility_id,
                        day=day,
                        at=at + timedelta(hours=2),
                        program=p.program_id,
                        ref=ref,
                        outcome="accepted",
                    )
            if p.unit_business == "급식지원서비스" and rng.random() < 0.3:
                visitor_no += 1
                code = f"V-{p.facility_id}-{day:%Y%m%d}-{visitor_no % 10000:04d}"
                visitor = {
                    "visitor_code": code,
                    "gender": rng.choice(["M", "F"]),
                    "age_band": rng.choice(AGE_BANDS[-6:]),
                    "neighbourhood": rng.choice(NEIGHBOURHOODS),
                    "purpose": "경로식당 일시이용",
                }
                yield _event(
                    f=p.facility_id,
                    day=day,
                    at=_at(day, sp.starts, rng),
                    program=p.program_id,
                    ref=code,
                    outcome="accepted",
                    visitor=visitor,
                )
            if rng.random() < 0.05:  # an unknown card: refused, no member
                yield _event(
                    f=p.facility_id,
                    day=day,
                    at=_at(day, sp.starts, rng),
                    program=p.program_id,
                    ref=None,
                    outcome="unknown_credential",
                )
        day += timedelta(days=1)
    # Practicum (table 3-2): 12 students, 20 winter days and 20 summer days, at every center.
    for sp in sample.programs:
        if sp.program.rule_id != "practicum":
            continue
        p = sp.program
        for term, first in (("W", date(sample.year, 1, 5)), ("S", date(sample.year, 7, 6))):
            days = [
                first + timedelta(days=d)
                for d in range(40)
                if (first + timedelta(days=d)).isoweekday() <= 5
            ][:20]
            for s in range(12):
                for d in days:
                    yield _event(
                        f=p.facility_id,
                        day=d,
                        at=_at(d, time(9), rng),
                        program=p.program_id,
                        ref=f"{p.facility_id}-PR{term}{s:02d}",
                        outcome="accepted",
                    )


def _contacts(sample: CitySample, rng: random.Random) -> list[ContactIn]:
    """Residents met in the neighbourhood, a few a month per center."""
    found = []
    for sp in sample.programs:
        if not sp.program.program_id.endswith("-NET"):
            continue
        for month in range(1, 13):
            for n in range(rng.randint(1, 4)):
                met = datetime(sample.year, month, rng.randint(1, 28), 14, tzinfo=SEOUL)
                found.append(
                    ContactIn(
                        contact_code=f"C-{sp.program.facility_id}-{month:02d}{n:02d}",
                        facility_id=sp.program.facility_id,
                        program_id=sp.program.program_id,
                        gender=rng.choice(["M", "F"]),
                        age_band=rng.choice(AGE_BANDS[4:]),
                        neighbourhood=rng.choice(NEIGHBOURHOODS),
                        place="경로당",
                        met_at=met,
                        needs="안부확인",
                    )
                )
    return found


def load_registry(
    conn: psycopg.Connection[Any], *, sample: CitySample, key: bytes, cipher: FieldCipher
) -> None:
    """Write the sample's facilities, programs (with targets), members and contacts.

    `cipher` encrypts the members' birth dates and the contacts' needs (personal fields).
    """
    for f in sample.facilities:
        store.upsert_facility(conn, facility=f)
    for sp in sample.programs:
        store.upsert_program(conn, program=sp.program, year=sample.year, targets=sp.targets)
    for m in sample.members:
        store.upsert_member(conn, member=m, key=key, cipher=cipher)
    for c in sample.contacts:
        store.register_contact(conn, contact=c, cipher=cipher)


def load_events(conn: psycopg.Connection[Any], *, events: list[tuple[Any, ...]]) -> int:
    """COPY events into attendance_events (one statement, so triggers see them all)."""
    query = sql.SQL("COPY attendance_events ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in _EVENT_COLUMNS)
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        for row in events:
            copy.write_row(row)
    return len(events)


def load_centers(conn: psycopg.Connection[Any], *, key: bytes) -> int:
    """Register the five centers' kiosk programs and members (the demo's registry).

    The same members and cards as welfare.sample.centers.people(), so the kiosks' rosters and
    the registry agree; returns how many members were registered.
    """
    count = 0
    for center in CENTERS:
        store.upsert_facility(
            conn, facility=Facility(facility_id=center.facility_id, name=center.name)
        )
        for session in center.programs:
            sample = _program(center, session)
            store.upsert_program(conn, program=sample.program)
        for person in people(center):
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=person.member_ref,
                    facility_id=center.facility_id,
                    display_name=person.name,
                    status=person.status,
                    card_uids=[person.card_uid],
                    programs=dict.fromkeys(person.program_ids),
                ),
                key=key,
            )
            count += 1
    return count
