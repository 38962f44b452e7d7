"""Counting rules are data: table 3-2's practicum gives the same figures at every center."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from broker.ids import uuid7
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.figures.reports import build_quarterly_report
from ingest_api.registry import store
from ingest_api.registry.models import CountingRule, Facility, Program
from tests.ingest_api.figures.conftest import fresh_database
from welfare.sample.centers import CENTERS, SEOUL
from welfare.sample.city import load_events

YEAR = 2025
WINTER = date(YEAR, 1, 6)
SUMMER = date(YEAR, 7, 7)


def _weekdays(first: date, n: int) -> list[date]:
    """The first n weekdays from a day."""
    days: list[date] = []
    day = first
    while len(days) < n:
        if day.isoweekday() <= 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _practicum_events(facility: str, program: str) -> list[tuple[Any, ...]]:
    """12 students on 20 winter days and 12 on 20 summer days, as staff check them in."""
    rows = []
    for term, first in (("W", WINTER), ("S", SUMMER)):
        for day in _weekdays(first, 20):
            for student in range(12):
                at = datetime.combine(day, time(9, student), SEOUL).astimezone(UTC)
                rows.append(
                    (
                        uuid7(at),
                        at.replace(microsecond=0),
                        facility,
                        "tablet-1",
                        day,
                        program,
                        f"{facility}-ST{term}{student:02d}",
                        "staff",
                        "accepted",
                        None,
                    )
                )
                if student == 0:  # a double check-in by staff must not count twice
                    later = at + timedelta(minutes=30)
                    rows.append(
                        (
                            uuid7(later),
                            later.replace(microsecond=0),
                            facility,
                            "tablet-1",
                            day,
                            program,
                            f"{facility}-ST{term}{student:02d}",
                            "staff",
                            "already_served",
                            None,
                        )
                    )
    return rows


@pytest.fixture
def practicum_db(pg_server: Any) -> str:
    """Every center records the same practicum under the unified rule (and a copy under another)."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        for center in CENTERS:
            f = center.facility_id
            store.upsert_facility(conn, facility=Facility(facility_id=f, name=center.name))
            store.upsert_program(
                conn,
                program=Program(
                    program_id=f"{f}-PRAC",
                    facility_id=f,
                    name="사회복지현장실습",
                    function="service_provision",
                    business_area="교육사업",
                    unit_business="현장실습",
                    fee_type="free",
                    rule_id="practicum",
                ),
            )
            load_events(conn, events=_practicum_events(f, f"{f}-PRAC"))
    return url


def _year() -> Period:
    """The whole year."""
    return Period.months("year", date(YEAR, 1, 1), date(YEAR, 12, 1))


def test_table_3_2_practicum_is_40_cases_and_480_person_visits_at_every_center(
    practicum_db: str,
) -> None:
    """The unified rule: 40 cases and 480 person-visits, whichever center records it."""
    with psycopg.connect(practicum_db) as conn:
        from ingest_api.figures import rollup

        rollup.refresh(conn)
        per_center = compute(conn, periods=[_year()], dims=["facility"])
        assert {r.key["facility"]: (r.person_visits, r.cases) for r in per_center} == {
            c.facility_id: (480, 40) for c in CENTERS
        }
        assert all(r.unique_persons == 24 for r in per_center)
        city = compute(conn, periods=[_year()], dims=[])[0]
        assert (city.person_visits, city.cases) == (5 * 480, 5 * 40)
        # Winter alone (Q1): 12 students × 20 days.
        q1 = build_quarterly_report(conn, facility_id="C", year=YEAR, quarter=1)
        program_row = next(r for r in q1.rows if r.program_id == "C-PRAC")
        quarter = program_row.periods[f"{YEAR}-Q1"].total
        assert (quarter.unique_persons, quarter.person_visits, quarter.cases) == (12, 240, 20)


def test_changing_the_rule_data_changes_the_figures(practicum_db: str) -> None:
    """A rule is data: counting each student-day as a case gives 480 cases, without code."""
    with psycopg.connect(practicum_db) as conn:
        from ingest_api.figures import rollup

        rollup.refresh(conn)
        store.upsert_rule(
            conn,
            rule=CountingRule(
                rule_id="practicum_per_student",
                name="학생일수 = 건",
                visit_unit="member_day",
                case_unit="member_day",
                counts_unique=True,
            ),
        )
        conn.execute(
            "UPDATE programs SET rule_id = 'practicum_per_student' WHERE program_id = 'B-PRAC'"
        )
        rows = compute(conn, periods=[_year()], dims=["facility"], scope=Scope(facility_id="B"))
        assert (rows[0].person_visits, rows[0].cases) == (480, 480)
        conn.execute("UPDATE programs SET rule_id = 'excluded' WHERE program_id = 'B-PRAC'")
        assert compute(conn, periods=[_year()], dims=[], scope=Scope(facility_id="B")) == []
        conn.execute("UPDATE programs SET rule_id = 'publicity' WHERE program_id = 'B-PRAC'")
        publicity = compute(conn, periods=[_year()], dims=[], scope=Scope(facility_id="B"))[0]
        # Publicity counts each recorded activity as a case and no persons.
        assert (publicity.unique_persons, publicity.person_visits, publicity.cases) == (0, 0, 480)
