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


# A registry change before the refresh: (member, gender, neighbourhood, fee override of one of
# their enrolments) — the person attributes the cube caches must follow it.
change = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from([m[0] for m in MEMBERS]),
        st.sampled_from([None, "M", "F"]),
        st.sampled_from([None, "우만1동", "인계동"]),
        st.sampled_from([None, "paid", "reduced", "free"]),
    ),
)
span = st.tuples(
    st.integers(min_value=0, max_value=150),  # first day of the year
    st.integers(min_value=0, max_value=45),  # length in days
    st.lists(st.sampled_from([d for d in DIMS if d != "period"]), max_size=2, unique=True),
)


def _apply(
    conn: psycopg.Connection[Any], drawn: tuple[str, str | None, str | None, str | None]
) -> None:
    """Change one member's gender, neighbourhood and first enrolment's fee type."""
    ref, gender, hood, fee = drawn
    conn.execute(
        "UPDATE members SET gender = %s, neighbourhood = %s WHERE member_ref = %s",
        (gender, hood, ref),
    )
    conn.execute(
        "UPDATE enrolments SET fee_type = %s WHERE member_ref = %s AND program_id ="
        " (SELECT min(program_id) FROM enrolments WHERE member_ref = %s)",
        (fee, ref, ref),
    )


def _table(rows: list[Any], dims: list[str]) -> dict[tuple[str, ...], tuple[int, int, int, int]]:
    """Figure rows as the oracle gives them."""
    return {
        tuple(r.key[d] for d in dims): (
            r.unique_persons,
            r.person_visits,
            r.cases,
            r.operating_days,
        )
        for r in rows
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(event, max_size=60),
    queries=st.lists(query, min_size=1, max_size=3),
    spans=st.lists(span, max_size=2),
    registry=change,
)
def test_any_slice_equals_a_direct_count(
    registry_db: str,
    events: list[tuple[str, int, str, str, int]],
    queries: list[tuple[list[str], int, int, str | None]],
    spans: list[tuple[int, int, list[str]]],
    registry: tuple[str, str | None, str | None, str | None] | None,
) -> None:
    """Rollup (cached cube) and raw paths equal the oracle for random data, registry changes,
    groupings, several periods at once and spans of days."""
    with psycopg.connect(registry_db) as conn:
        conn.execute("DELETE FROM attendance_events")  # marks the old days dirty
        half = len(events) // 2
        load_events(conn, events=_rows(events[:half]))
        conn.commit()
        rollup.refresh(conn)
        # The rest as the ingest sends it: deltas added to the rows refreshed above.
        load_events(conn, events=_rows(events[half:]))
        conn.commit()
        rollup.refresh(conn)
        if registry is not None:
            # The year is in this process's cube now; a registry change alone must renew it.
            compute(
                conn, periods=[Period.months("y", date(YEAR, 1, 1), date(YEAR, 12, 1))], dims=[]
            )
            _apply(conn, registry)
            conn.commit()
            rollup.refresh(conn)
        data = oracle.load(conn)
        for dims, first, extra, facility in queries:
            last = min(first + extra, 12)
            period = Period.months("p", date(YEAR, first, 1), date(YEAR, last, 1))
            ytd = Period.months("ytd", date(YEAR, 1, 1), date(YEAR, last, 1))
            for p in (period, ytd):
                expected = oracle.count(
                    data,
                    months=[(YEAR, m) for m in range(p.first_month.month, last + 1)],
                    as_of=p.as_of,
                    dims=dims,
                    keep=lambda a, f=facility: f is None or a["facility"] == f,  # type: ignore[misc]
                )
                for source in ("rollup", "raw"):
                    # Both periods in one call: the slabs serve two periods with two ages.
                    got = compute(
                        conn,
                        periods=[period, ytd],
                        dims=["period", *dims],  # type: ignore[list-item]
                        scope=Scope(facility_id=facility),
                        source=source,
                    )
                    mine = [r for r in got if r.key["period"] == p.label]
                    assert _table(mine, dims) == expected, (source, p, dims, facility)
        for first_day, length, dims in spans:
            start = date(YEAR, 1, 1) + timedelta(days=first_day)
            days = Period("d", start, start + timedelta(days=length))
            months = sorted({(d.year, d.month) for d in (days.first_day, days.last_day)})
            expected = oracle.count(
                data,
                months=[(YEAR, m) for m in range(months[0][1], months[-1][1] + 1)],
                as_of=days.as_of,
                dims=dims,
                days_between=(days.first_day, days.last_day),
            )
            for source in ("rollup", "raw"):
                got = compute(conn, periods=[days], dims=dims, source=source)  # type: ignore[arg-type]
                assert _table(got, dims) == expected, (source, days, dims)


def test_a_registry_change_renews_the_cached_months(registry_db: str) -> None:
    """A member's new gender reaches the cached figures at the next refresh, not before."""
    year = Period.months("y", date(YEAR, 1, 1), date(YEAR, 12, 1))
    with psycopg.connect(registry_db) as conn:
        conn.execute("DELETE FROM attendance_events")
        load_events(conn, events=_rows([("P1", 10, "M2", "accepted", 3)]))
        conn.execute("UPDATE members SET gender = 'F' WHERE member_ref = 'M2'")
        conn.commit()
        rollup.refresh(conn)
        before = compute(conn, periods=[year], dims=["gender"])
        conn.execute("UPDATE members SET gender = 'M' WHERE member_ref = 'M2'")
        conn.commit()
        stale = compute(conn, periods=[year], dims=["gender"])
        rollup.refresh(conn)
        after = compute(conn, periods=[year], dims=["gender"])
    assert [r.key["gender"] for r in before] == ["F"]
    assert stale == before  # reading never refreshes
    assert [r.key["gender"] for r in after] == ["M"]
