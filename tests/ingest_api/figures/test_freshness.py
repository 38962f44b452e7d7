"""The service's background refresher brings new attendances into every figure, GETs never."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from broker.ids import uuid7
from ingest_api.figures.engine import Period
from ingest_api.figures.refresher import RollupRefresher
from ingest_api.figures.reports import build_quarterly_report, facility_figures
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.registry import store
from ingest_api.registry.models import Facility, MemberIn, Program
from tests.ingest_api.figures.conftest import KEY, YEAR, fresh_database

DAY = date(YEAR, 5, 13)


def _tap(ref: str) -> EventRow:
    """An accepted meal of `ref` at noon on DAY, as the ingest writes it."""
    at = datetime(YEAR, 5, 13, 3, 0, tzinfo=UTC)
    return EventRow(
        event_id=uuid7(at),
        occurred_at=at,
        facility_id="F1",
        device_id="k1",
        service_date=DAY,
        program_id="F1-MEAL",
        member_ref=ref,
        method="card",
        outcome="accepted",
        ticket_no=None,
        roster_version=None,
        visitor=None,
    )


def _counted(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Unique persons of the day's figures and of the quarterly report's month."""
    daily = facility_figures(conn, period=Period.day(DAY), facility_id="F1")
    day = next((r.unique_persons for r in daily if r.program_id is None), 0)
    report = build_quarterly_report(conn, facility_id="F1", year=YEAR, quarter=2)
    return day, report.rows[0].periods[f"{YEAR}-05"].total.unique_persons


def test_a_new_attendance_reaches_every_figure_through_the_refresher(pg_server: Any) -> None:
    """Written as the ingest writes it, a tap is counted by the day's figures and the report
    once the background refresher has run; reading alone never counts it."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="F1", name="센터 1"))
        store.upsert_program(
            conn,
            program=Program(
                program_id="F1-MEAL",
                facility_id="F1",
                name="경로식당",
                function="service_provision",
                business_area="지역사회보호",
                unit_business="급식지원서비스",
                fee_type="free",
            ),
        )
        for ref in ("M1", "M2"):
            store.upsert_member(
                conn,
                member=MemberIn(member_ref=ref, facility_id="F1", display_name=ref),
                key=KEY,
            )
        with conn.cursor() as cur:
            insert_events(cur, rows=[_tap("M1")])
        conn.commit()
        assert _counted(conn) == (0, 0)  # nothing refreshed yet, and reading does not refresh
        assert _counted(conn) == (0, 0)
    pool: Any = ConnectionPool(url, min_size=1, max_size=2, open=True)
    refresher = RollupRefresher(pool, interval_s=0.2)
    refresher.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            first = _wait_for(conn, (1, 1))
            with conn.cursor() as cur:
                insert_events(cur, rows=[_tap("M2"), _tap("M2")])
            seen = _wait_for(conn, (2, 2))
            # Plain PostgreSQL keeps the ingest's deltas; TimescaleDB has none (its aggregates).
            deltas = conn.execute("SELECT to_regclass('figures_delta') IS NOT NULL").fetchone()
            tables = ["figures_dirty", *(["figures_delta"] if deltas == (True,) else [])]
            pending = [
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                ).fetchone()
                for t in tables
            ]
    finally:
        refresher.stop()
        pool.close()
    assert first == (1, 1)
    assert seen == (2, 2)  # M2 twice on one day is one person
    assert all(n == (0,) for n in pending), pending
    assert refresher.refreshes >= 2


def _wait_for(conn: psycopg.Connection[Any], wanted: tuple[int, int]) -> tuple[int, int]:
    """Poll the figures until they show `wanted` (or 30 s pass); returns what was seen last."""
    deadline = time.monotonic() + 30
    seen = _counted(conn)
    while seen != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = _counted(conn)
    return seen
