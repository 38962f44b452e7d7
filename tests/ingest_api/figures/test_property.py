"""Property: for any generated attendance and any slice, the aggregator equals a direct count."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.ids import uuid7
from ingest_api.figures import rollup
from ingest_api.figures.const import DIMS
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.registry import store
from ingest_api.registry.models import Facility, MemberIn, Program
from tests.ingest_api.figures import oracle
from tests.ingest_api.figures.conftest import KEY, fresh_database
from tests.security_helpers import CIPHER
from welfare.sample.centers import SEOUL
from welfare.sample.city import load_events

YEAR = 2026
# (program, facility, rule, fee type, unit business): every rule and two centers.
PROGRAMS = (
    ("P1", "F1", "attendance", "paid", "급식지원서비스"),
    ("P2", "F1", "practicum", "free", "현장실습"),
    ("P3", "F2", "rental", "reduced", "대관"),
    ("P4", "F2", "consultation", "free", "사례관리사업"),
    ("P5", "F2", "network", "free", "네트워크"),
    ("P6", "F1", "excluded", "free", "행사"),
    ("P7", "F2", "attendance", "free", "급식지원서비스"),
)
# Members: ref, facility, name, birth date, gender, neighbourhood, {program: fee override}.
# M1 and M4 are one person registered at both centers.
MEMBERS: tuple[tuple[Any, ...], ...] = (
    ("M1", "F1", "김민수", date(1940, 3, 31), "M", "우만1동", {"P1": "reduced", "P2": None}),
    ("M2", "F1", "이영희", date(1955, 1, 1), "F", "인계동", {"P1": None}),
    ("M3", "F1", "박철수", None, "M", None, {"P2": None}),
    ("M4", "F2", "김민수", date(1940, 3, 31), "M", "우만1동", {"P3": None, "P7": None}),
    ("M5", "F2", "최정숙", date(2010, 6, 15), "F", "매탄1동", {"P4": "paid"}),
    ("M6", "F2", "정옥자", date(1960, 4, 1), None, "매탄1동", {}),
)
REFS = [m[0] for m in MEMBERS] + ["V-F1-20260101-0001", "UNREGISTERED"]

event = st.tuples(
    st.sampled_from([p[0] for p in PROGRAMS]),
    st.integers(min_value=0, max_value=150),  # day of the year
    st.sampled_from(REFS),
    st.sampled_from(["accepted", "accepted", "accepted", "already_served"]),
    st.integers(min_value=0, max_value=23),  # hour (UTC): some service days span two UTC days
)
query = st.tuples(
    st.lists(st.sampled_from([d for d in DIMS if d != "period"]), max_size=2, unique=True),
    st.integers(min_value=1, max_value=5),  # first month
    st.integers(min_value=0, max_value=3),  # extra months
    st.sampled_from([None, "F1", "F2"]),
)


@pytest.fixture(scope="module")
def registry_db(pg_server: Any) -> str:
    """Two centers, every counting rule, members shared across centers, a visitor."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        for f in ("F1", "F2"):
            store.upsert_facility(conn, facility=Facility(facility_id=f, name=f"센터 {f}"))
        for pid, fid, rule, fee, unit in PROGRAMS:
            store.upsert_program(
                conn,
                program=Program(
                    program_id=pid,
                    facility_id=fid,
                    name=pid,
                    function="service_provision",
                    business_area="지역사회보호",
                    unit_business=unit,
                    fee_type=fee,
                    rule_id=rule,
                ),
            )
        for ref, fid, name, birth, gender, hood, programs in MEMBERS:
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=ref,
                    facility_id=fid,
                    display_name=name,
                    birth_date=birth,
                    gender=gender,
                    neighbourhood=hood,
                    programs=programs,
                ),
                key=KEY,
                cipher=CIPHER,
            )
        conn.execute(
            "INSERT INTO visitors (visitor_code, facility_id, gender, age_band, neighbourhood)"
            " VALUES ('V-F1-20260101-0001', 'F1', 'F', '75-79', '우만2동')"
        )
    return url


def _rows(events: list[tuple[str, int, str, str, int]]) -> list[tuple[Any, ...]]:
    """attendance_events rows of the drawn events (service date = Seoul date of the time)."""
    facility = {p[0]: p[1] for p in PROGRAMS}
    rows = []
    for program, day_no, ref, outcome, hour in events:
        at = datetime.combine(date(YEAR, 1, 1) + timedelta(days=day_no), time(hour), UTC)
        service_date = at.astimezone(SEOUL).date()
        rows.append(
            (
                uuid7(at),
                at,
                facility[program],
                "k1",
                service_date,
                program,
                ref,
                "card",
                outcome,
                None,
            )
        )
    return rows


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(event, max_size=60), queries=st.lists(query, min_size=1, max_size=3))
def test_any_slice_equals_a_direct_count(
    registry_db: str,
    events: list[tuple[str, int, str, str, int]],
    queries: list[tuple[list[str], int, int, str | None]],
) -> None:
    """Rollup and raw paths both equal the oracle for random data, groupings and periods."""
    with psycopg.connect(registry_db) as conn:
        conn.execute("DELETE FROM attendance_events")
        load_events(conn, events=_rows(events))
        conn.commit()
        rollup.refresh(conn)
        data = oracle.load(conn)
        for dims, first, extra, facility in queries:
            last = min(first + extra, 12)
            period = Period.months("p", date(YEAR, first, 1), date(YEAR, last, 1))
            expected = oracle.count(
                data,
                months=[(YEAR, m) for m in range(first, last + 1)],
                as_of=period.as_of,
                dims=dims,
                keep=lambda a, f=facility: f is None or a["facility"] == f,  # type: ignore[misc]
            )
            for source in ("rollup", "raw"):
                got = compute(
                    conn,
                    periods=[period],
                    dims=dims,  # type: ignore[arg-type]
                    scope=Scope(facility_id=facility),
                    source=source,
                )
                assert {
                    tuple(r.key[d] for d in dims): (r.unique_persons, r.person_visits, r.cases)
                    for r in got
                } == expected, (source, dims, first, last, facility)
