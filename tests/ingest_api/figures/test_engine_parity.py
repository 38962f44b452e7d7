"""The cases in which TimescaleDB once counted differently from plain PostgreSQL, pinned.

Each runs on whichever engine the session's cluster has (WELFARE_TIMESCALEDB=on with a
WELFARE_PG_BINDIR whose server has the extension runs the continuous-aggregate path); the
expected numbers are written out here, counted by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest

from ingest_api.figures import rollup
from ingest_api.figures.engine import Period, compute
from ingest_api.registry import store
from ingest_api.registry.models import Facility, MemberIn, Program
from tests.ingest_api.figures.conftest import KEY, fresh_database
from welfare.sample.city import load_events

APRIL = Period.months("apr", date(2026, 4, 1), date(2026, 4, 1))


@pytest.fixture
def center(pg_server: Any) -> str:
    """One center, one attendance program, one member."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="F1", name="센터 1"))
        store.upsert_program(
            conn,
            program=Program(
                program_id="P1",
                facility_id="F1",
                name="경로식당",
                function="service_provision",
                business_area="지역사회보호",
                unit_business="급식지원서비스",
                fee_type="free",
            ),
        )
        store.upsert_member(
            conn, member=MemberIn(member_ref="M1", facility_id="F1", display_name="M1"), key=KEY
        )
    return url


def _event(at: str, service_date: date) -> tuple[Any, ...]:
    """An accepted tap of M1 at `at` (UTC) for `service_date`, as load_events writes it."""
    when = datetime.fromisoformat(at).replace(tzinfo=UTC)
    return (uuid.uuid4(), when, "F1", "k1", service_date, "P1", "M1", "card", "accepted", None)


def _visits(conn: psycopg.Connection[Any], period: Period, source: str) -> int:
    """Person-visits of the period (the attendances of the program's rule), 0 when none."""
    rows = compute(conn, periods=[period], dims=[], source=source)  # type: ignore[arg-type]
    return rows[0].person_visits if rows else 0


def test_rows_copied_in_after_a_refresh_are_counted_at_the_next(center: str) -> None:
    """COPY (the bulk load, kiosk batches) reaches the figures at the next refresh: on
    TimescaleDB 2.28 COPY into the hypertable with our statement trigger records no
    invalidation, so the refresh re-materializes the markers' spans itself."""
    with psycopg.connect(center) as conn:
        load_events(conn, events=[_event("2026-04-10 03:00", date(2026, 4, 10))])
        conn.commit()
        rollup.refresh(conn)
        load_events(conn, events=[_event("2026-04-03 03:00", date(2026, 4, 3))])  # an old day
        conn.commit()
        before = _visits(conn, APRIL, "rollup")
        rollup.refresh(conn)
        after = _visits(conn, APRIL, "rollup")
        raw = _visits(conn, APRIL, "raw")
    assert (before, after, raw) == (1, 2, 2)


def test_a_service_day_split_over_two_utc_months_is_recounted_whole(center: str) -> None:
    """A Korean service day of 1 April starts on 31 March in UTC, so its rows sit in two month
    buckets of the month aggregate; a second batch for both must update both (TimescaleDB once
    kept the April bucket's old sum)."""
    day = date(2026, 4, 1)
    with psycopg.connect(center) as conn:
        load_events(conn, events=[_event("2026-04-01 04:00", day)])
        conn.commit()
        rollup.refresh(conn)
        load_events(conn, events=[_event("2026-03-31 22:00", day), _event("2026-04-01 04:00", day)])
        conn.commit()
        rollup.refresh(conn)
        rollup_rows = compute(conn, periods=[APRIL], dims=[])
        raw = _visits(conn, APRIL, "raw")
        month = conn.execute(
            "SELECT days, attendances FROM figures_member_month WHERE person_ref = 'M1'"
        ).fetchall()
    assert month == [(1, 3)]  # one day, three attendances: the rollup both engines expose
    # The attendance rule: one person, one visit per person-day, one session day.
    assert (rollup_rows[0].unique_persons, rollup_rows[0].person_visits, raw) == (1, 1, 1)


def test_deleted_rows_leave_no_figure(center: str) -> None:
    """Rows deleted after a refresh leave the rollup at the next one (no stale bucket)."""
    with psycopg.connect(center) as conn:
        load_events(conn, events=[_event("2026-03-31 22:00", date(2026, 4, 1))])
        conn.commit()
        rollup.refresh(conn)
        first = _visits(conn, APRIL, "rollup")
        conn.execute("DELETE FROM attendance_events")
        conn.commit()
        rollup.refresh(conn)
        month = conn.execute("SELECT count(*) FROM figures_member_month").fetchone()
        day = conn.execute("SELECT count(*) FROM figures_member_day").fetchone()
        after = _visits(conn, APRIL, "rollup")
    assert (first, after, month, day) == (1, 0, (0,), (0,))


def test_time_dimensions_keep_their_names_in_any_order(center: str) -> None:
    """Grouped by quarter then month, each value stays under its own name."""
    with psycopg.connect(center) as conn:
        load_events(conn, events=[_event("2026-04-10 03:00", date(2026, 4, 10))])
        conn.commit()
        rollup.refresh(conn)
        rows = compute(conn, periods=[APRIL], dims=["quarter", "month"])
    assert [r.key for r in rows] == [{"quarter": "2026-Q2", "month": "2026-04"}]


def test_an_event_moved_to_another_person_moves_its_figure(center: str) -> None:
    """An UPDATE that gives a tap to another member takes it from the first one's month."""
    with psycopg.connect(center) as conn:
        store.upsert_member(
            conn, member=MemberIn(member_ref="M2", facility_id="F1", display_name="M2"), key=KEY
        )
        load_events(conn, events=[_event("2026-04-10 03:00", date(2026, 4, 10))])
        conn.commit()
        rollup.refresh(conn)
        conn.execute("UPDATE attendance_events SET member_ref = 'M2'")
        conn.commit()
        rollup.refresh(conn)
        month = conn.execute(
            "SELECT person_ref, days, attendances FROM figures_member_month"
        ).fetchall()
    assert month == [("M2", 1, 1)]


def test_refresh_windows_are_whole_utc_days_merged() -> None:
    """Markers' spans become the day aggregate's buckets: UTC days, touching windows merged."""
    kst = datetime.fromisoformat("2026-04-01T08:00+09:00")  # 31 March 23:00 UTC
    spans = [
        (kst, kst),
        (datetime(2026, 4, 1, 5, tzinfo=UTC), datetime(2026, 4, 1, 6, tzinfo=UTC)),
        (datetime(2026, 4, 5, 1, tzinfo=UTC), datetime(2026, 4, 6, 2, tzinfo=UTC)),
        (None, None),  # a contact's marker: nothing to re-materialize
    ]
    assert rollup._day_windows(spans) == [
        (datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)),
        (datetime(2026, 4, 5, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC)),
    ]
