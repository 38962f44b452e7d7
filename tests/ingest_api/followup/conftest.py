"""A small city for the follow-up and figures pages: meals and a class over recent weeks.

Center B runs a meal hall (absence after 3 service days) and a yoga class (the default, 5);
A runs its own meal hall. Days are counted back from today in the facilities' time zone, so
the pages (which ask for "today") see them as recent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from broker.const import DEFAULT_TIMEZONE
from broker.ids import uuid7
from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.figures import rollup
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.main import create_app
from ingest_api.registry import schedules, store
from ingest_api.registry.models import (
    Consent,
    Facility,
    MemberIn,
    Program,
    ScheduleIn,
    Targets,
    WeeklySession,
)
from tests.security_helpers import CIPHER, DATA_KEY, add_account, session_headers

CREDENTIAL_KEY = "followup-suite-credential-key-1c9e"
TZ = ZoneInfo(DEFAULT_TIMEZONE)
TODAY = datetime.now(TZ).date()
# B's meal hall served on these days back from today (3 and 4 days ago it was closed).
MEAL_DAYS = [TODAY - timedelta(days=n) for n in (1, 2, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15)]
YOGA_DAYS = [TODAY - timedelta(days=n) for n in (2, 9, 16, 23, 30, 37)]
MEMBERS = [f"B-M{n}" for n in range(1, 13)]


def phone(ref: str) -> str:
    """A member's made-up phone number."""
    n = sum(map(ord, ref))
    return f"010-{n % 10000:04d}-{(n * 7) % 10000:04d}"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time of a day, as UTC."""
    return datetime.combine(day, time(hour, minute), TZ).astimezone(UTC)


@dataclass
class City:
    """The app, its database, and signed-in callers."""

    url: str
    client: TestClient
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


def program(pid: str, fid: str, **kw: object) -> Program:
    """A free program of the meal-support unit."""
    return Program.model_validate(
        {
            "program_id": pid,
            "facility_id": fid,
            "name": kw.pop("name", pid),
            "function": "service_provision",
            "business_area": "지역사회보호",
            "unit_business": "급식지원서비스",
            "fee_type": "free",
            **kw,
        }
    )


def event(day: date, minute: int, fid: str, pid: str, ref: str | None, **kw: object) -> EventRow:
    """One kiosk decision at lunch (11:30 + minute) on a day."""
    when = at(day, 11, 30) + timedelta(minutes=minute, seconds=random.random())
    return EventRow(
        uuid7(when),
        when,
        fid,
        "meal-1",
        day,
        pid,
        ref,
        str(kw.get("method", "card")),
        str(kw.get("outcome", "accepted")),
        kw.get("ticket"),  # type: ignore[arg-type]
        "v1",
        kw.get("visitor"),  # type: ignore[arg-type]
    )


def build_city(url: str) -> dict[str, str]:
    """Facilities, programs, members with varied attendance, and the accounts.

    Returns the TOTP secrets of the accounts that sign in with a second factor.
    """
    rng = random.Random(13)
    with psycopg.connect(url) as conn:
        for fid, name in (("A", "새빛"), ("B", "한마음")):
            store.upsert_facility(conn, facility=Facility(facility_id=fid, name=name))
        store.upsert_program(
            conn,
            year=TODAY.year,
            targets=Targets(unique_persons=30, person_visits=1500, cases=240),
            program=program(
                "B-MEAL",
                "B",
                name="경로식당",
                kind="meal",
                absence_days=3,
                capacity=60,
                team="지역복지팀",
            ),
        )
        store.upsert_program(
            conn, program=program("B-YOGA", "B", name="요가교실", team="평생교육팀")
        )
        store.upsert_program(
            conn, program=program("A-MEAL", "A", name="새빛 경로식당", kind="meal")
        )
        for n, ref in enumerate(MEMBERS):
            enrolled = {"B-MEAL": None} if n % 3 else {"B-MEAL": None, "B-YOGA": None}
            member = MemberIn(
                member_ref=ref,
                facility_id="B",
                display_name=f"회원{n + 1:02d}",
                gender="F" if n % 2 else "M",
                birth_date=date(1940 + n, 3, 1),
                phone=phone(ref),
                neighbourhood=["우만1동", "우만2동", "지동"][n % 3],
                consents=[
                    Consent(kind="privacy", granted_on=date(2026, 1, 2)),
                    Consent(kind="transfer", granted_on=date(2026, 1, 2)),
                ],
                programs=enrolled,
            )
            store.upsert_member(conn, member=member, key=CREDENTIAL_KEY.encode(), cipher=CIPHER)
        store.upsert_member(
            conn,
            member=MemberIn(
                member_ref="A-M1",
                facility_id="A",
                display_name="김순자",
                gender="F",
                birth_date=date(1941, 5, 9),
                phone="010-1111-2222",
                neighbourhood="우만2동",
                consents=[Consent(kind="privacy", granted_on=date(2026, 1, 2))],
                programs={"A-MEAL": None},
            ),
            key=CREDENTIAL_KEY.encode(),
            cipher=CIPHER,
        )
        # 회원01 (B-M1) also eats at A's meal hall: one person served by two centers.
        store.upsert_member(
            conn,
            member=MemberIn(
                member_ref="A-M2",
                facility_id="A",
                display_name="회원01",
                gender="M",
                birth_date=date(1940, 3, 1),
                neighbourhood="우만1동",
                consents=[
                    Consent(kind="privacy", granted_on=date(2026, 1, 2)),
                    Consent(kind="transfer", granted_on=date(2026, 1, 2)),
                ],
                programs={"A-MEAL": None},
            ),
            key=CREDENTIAL_KEY.encode(),
            cipher=CIPHER,
        )
        # Everyone enrolled 60 days ago; B-M12 only last week (absent since, fewer days).
        conn.execute("UPDATE enrolments SET enrolled_on = %s", (TODAY - timedelta(days=60),))
        conn.execute(
            "UPDATE enrolments SET enrolled_on = %s WHERE member_ref = 'B-M12'",
            (TODAY - timedelta(days=7),),
        )
        # B-M11 has died: never on the list. B-M10 left the meal hall (enrolment ended).
        conn.execute("UPDATE members SET status = 'deceased' WHERE member_ref = 'B-M11'")
        conn.execute(
            "UPDATE enrolments SET ended_on = %s"
            " WHERE member_ref = 'B-M10' AND program_id = 'B-MEAL'",
            (TODAY - timedelta(days=20),),
        )
        rows: list[EventRow] = []
        # Each member's own habit: stops coming k days before the end (some never stop).
        stop = {ref: rng.choice([0, 0, 1, 2, 3, 4, 6, 8, 11, 99]) for ref in MEMBERS}
        stop["B-M1"], stop["B-M2"], stop["B-M9"], stop["B-M12"] = 0, 5, 99, 99
        for i, day in enumerate(sorted(MEAL_DAYS)):
            remaining = len(MEAL_DAYS) - i  # 1 on the last service day
            for m, ref in enumerate(MEMBERS):
                if remaining > stop[ref] and rng.random() < 0.9:
                    rows.append(event(day, m, "B", "B-MEAL", ref, ticket=m + 1))
            # a refused tap (not enrolled elsewhere) and a visitor: not attendance of a member
            rows.append(event(day, 40, "B", "B-MEAL", "B-M9", outcome="already_served"))
            rows.append(event(day, 41, "B", "B-MEAL", None, outcome="unknown_credential"))
            rows.append(event(day, 1, "A", "A-MEAL", "A-M1", ticket=1))
            rows.append(event(day, 2, "A", "A-MEAL", "A-M2", ticket=2))
            code = f"V-B-{day:%Y%m%d}-0001"  # a one-off visitor: member_ref is their code
            visitor = {
                "visitor_code": code,
                "gender": "M",
                "age_band": "70-74",
                "neighbourhood": "지동",
            }
            rows.append(
                event(day, 20, "B", "B-MEAL", code, method="staff", visitor=json.dumps(visitor))
            )
        for day in YOGA_DAYS:
            for m, ref in enumerate(MEMBERS):
                if m % 3 == 0 and (ref != "B-M4" or day < TODAY - timedelta(days=34)):
                    rows.append(event(day, 60 + m, "B", "B-YOGA", ref))
        with conn.cursor() as cur:
            insert_events(cur, rows=rows)
    accounts: list[tuple[str, Role, str | None, tuple[str, ...]]] = [
        ("manager.b", Role.CENTER_MANAGER, "B", ()),
        ("staff.b", Role.CENTER_STAFF, "B", ()),
        ("staff.b.yoga", Role.CENTER_STAFF, "B", ("B-YOGA",)),
        ("staff.a", Role.CENTER_STAFF, "A", ()),
        ("manager.a", Role.CENTER_MANAGER, "A", ()),
        ("city.admin", Role.CITY_ADMIN, None, ()),
    ]
    secrets = {}
    for account, role, center, programs in accounts:
        issued = add_account(url, account, role, facility_id=center, programs=programs)
        if issued.totp_secret:
            secrets[account] = issued.totp_secret
    return secrets


def lunch_today(url: str) -> None:
    """Two sittings today (11:00 and 12:00, 4 seats each) and taps in both."""
    with psycopg.connect(url) as conn:
        sessions = [
            WeeklySession(weekday=TODAY.isoweekday(), starts=time(11), ends=time(12), capacity=4),
            WeeklySession(weekday=TODAY.isoweekday(), starts=time(12), ends=time(13), capacity=4),
        ]
        schedules.set_schedule(conn, program_id="B-MEAL", schedule=ScheduleIn(sessions=sessions))
        rows = [
            event(TODAY, -20 + n, "B", "B-MEAL", f"B-M{n + 1}", ticket=n + 1) for n in range(5)
        ]  # 11:10-11:14: five served (one more than the seats)
        rows.append(event(TODAY, -19, "B", "B-MEAL", "B-M2", outcome="already_served"))
        rows.append(event(TODAY, 45, "B", "B-MEAL", "B-M7", ticket=6))  # 12:15
        rows.append(event(TODAY, 46, "B", "B-MEAL", None, outcome="unknown_credential"))
        with conn.cursor() as cur:
            insert_events(cur, rows=rows)
        rollup.refresh(conn)


@pytest.fixture
def city(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[City]:
    """The app over the small city, with each caller's session."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", CREDENTIAL_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    build_city(database_url)
    settings = Settings(
        database_url=database_url, refresh_interval_s=0, security={"maintenance_interval_s": 0}
    )
    with TestClient(create_app(settings, consume=False)) as client:
        c = City(database_url, client)
        for name in ("manager.b", "staff.b", "staff.b.yoga", "staff.a", "manager.a", "city.admin"):
            c.headers[name] = session_headers(database_url, name)
        yield c
