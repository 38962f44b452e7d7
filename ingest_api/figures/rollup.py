"""Keeping the rollups current: dirty days recounted on PostgreSQL, refresh on TimescaleDB."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

_LOCK_ID = 7_305_227_310  # one refresher at a time
_CAGGS = ("figures_member_day_cagg", "figures_member_month_cagg")  # parent before child


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh did."""

    path: str  # "postgres" or "timescaledb"
    days: int
    months: int
    seconds: float


def uses_timescale(conn: psycopg.Connection[Any]) -> bool:
    """Whether the rollups are continuous aggregates (the TimescaleDB migration ran)."""
    row = conn.execute("SELECT to_regclass('figures_member_day_cagg') IS NOT NULL").fetchone()
    return bool(row and row[0])


def pending(conn: psycopg.Connection[Any]) -> bool:
    """Whether a refresh has anything to do (TimescaleDB tracks its own invalidations)."""
    if uses_timescale(conn):
        return True
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM figures_dirty)").fetchone()
    return bool(row and row[0])


def refresh(conn: psycopg.Connection[Any]) -> RefreshResult:
    """Bring the rollups up to date with every committed raw row (exact, idempotent).

    Commits the caller's open transaction first: the refresh runs in transactions of its own.
    """
    started = time.perf_counter()
    conn.commit()  # refresh runs in its own transactions, outside the caller's
    previous = conn.autocommit
    conn.autocommit = True
    try:
        if uses_timescale(conn):
            # refresh_continuous_aggregate cannot run inside a transaction block; a NULL window
            # means every invalidated range, so late rows of old days are recounted too.
            for name in _CAGGS:
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (name,))
            return RefreshResult("timescaledb", 0, 0, time.perf_counter() - started)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            days, months = _refresh_postgres(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
        return RefreshResult("postgres", days, months, time.perf_counter() - started)
    finally:
        conn.autocommit = previous


def _refresh_postgres(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Recount the dirty (facility, day)s and their months; returns how many of each."""
    with conn.transaction():
        # One snapshot for the whole refresh: markers committed after it stay for the next
        # refresh (they are invisible to the DELETE below), so no change is ever missed.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute("SELECT max(id) FROM figures_dirty").fetchone()
        high = row[0] if row else None
        if high is None:
            return 0, 0
        conn.execute(
            "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT DISTINCT facility_id, service_date"
            " FROM figures_dirty WHERE id <= %s",
            (high,),
        )
        conn.execute(
            "CREATE TEMP TABLE _dirty_months ON COMMIT DROP AS SELECT DISTINCT facility_id,"
            " date_trunc('month', service_date::timestamp)::date AS month FROM _dirty"
        )
        conn.execute(
            "DELETE FROM figures_member_day d USING _dirty x"
            " WHERE d.facility_id = x.facility_id AND d.service_date = x.service_date"
        )
        conn.execute(
            """
            INSERT INTO figures_member_day
                (facility_id, service_date, program_id, person_ref, attendances)
            SELECT facility_id, service_date, program_id, person_ref, sum(n)::integer
            FROM (
                SELECT e.facility_id, e.service_date, e.program_id, e.member_ref AS person_ref,
                       count(*) AS n
                FROM attendance_events e
                JOIN _dirty x ON x.facility_id = e.facility_id
                             AND x.service_date = e.service_date
                WHERE e.outcome = 'accepted' AND e.program_id IS NOT NULL
                  AND e.member_ref IS NOT NULL
                GROUP BY e.facility_id, e.service_date, e.program_id, e.member_ref
                UNION ALL
                SELECT c.facility_id, c.service_date, c.program_id, c.contact_code, 1
                FROM community_contacts c
                JOIN _dirty x ON x.facility_id = c.facility_id
                             AND x.service_date = c.service_date
                WHERE c.program_id IS NOT NULL
            ) AS s
            GROUP BY facility_id, service_date, program_id, person_ref
            """
        )
        conn.execute(
            "DELETE FROM figures_member_month m USING _dirty_months x"
            " WHERE m.facility_id = x.facility_id AND m.month = x.month"
        )
        conn.execute(
            """
            INSERT INTO figures_member_month
                (facility_id, month, program_id, person_ref, days, attendances, day_mask)
            SELECT d.facility_id, x.month, d.program_id, d.person_ref, count(*)::integer,
                   sum(d.attendances)::integer,
                   bit_or(1 << (extract(day FROM d.service_date)::integer - 1))::integer
            FROM figures_member_day d
            JOIN _dirty_months x ON x.facility_id = d.facility_id
                                AND d.service_date >= x.month
                                AND d.service_date < (x.month + INTERVAL '1 month')::date
            GROUP BY d.facility_id, x.month, d.program_id, d.person_ref
            """
        )
        days_row = conn.execute("SELECT count(*) FROM _dirty").fetchone()
        months_row = conn.execute("SELECT count(*) FROM _dirty_months").fetchone()
        conn.execute("DELETE FROM figures_dirty WHERE id <= %s", (high,))
        days = int(days_row[0]) if days_row else 0
        conn.execute(
            "INSERT INTO figures_refresh_state (name, refreshed_at, last_dirty_id, days)"
            " VALUES ('member_day', now(), %s, %s) ON CONFLICT (name) DO UPDATE SET"
            " refreshed_at = EXCLUDED.refreshed_at, last_dirty_id = EXCLUDED.last_dirty_id,"
            " days = EXCLUDED.days",
            (high, days),
        )
        return days, int(months_row[0]) if months_row else 0
