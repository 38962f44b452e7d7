"""Keeping the rollups current: dirty days recounted on PostgreSQL, refresh on TimescaleDB."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

_LOCK_ID = 7_305_227_310  # one refresher at a time
_DAY_CAGG = "figures_member_day_cagg"  # TimescaleDB: the day rollup (migration 0011)
# One pass per refresh call, so a question never sees a window half re-materialized.
_ONE_BATCH = Jsonb({"buckets_per_batch": 0})


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
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM figures_dirty) OR EXISTS (SELECT 1 FROM figures_delta)"
        " OR EXISTS (SELECT 1 FROM figures_dirty_refs)"
    ).fetchone()
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
        timescale = uses_timescale(conn)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            days, months = _refresh_timescale(conn) if timescale else _refresh_postgres(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
        path = "timescaledb" if timescale else "postgres"
        return RefreshResult(path, days, months, time.perf_counter() - started)
    finally:
        conn.autocommit = previous


def _refresh_postgres(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Recount the dirty (facility, day)s and their months, add the ingest's deltas to the
    rest, and renew the generations of every month changed; returns (days, months)."""
    with conn.transaction():
        # One snapshot for the whole refresh: markers and deltas committed after it stay for
        # the next refresh (they are invisible to the DELETEs below), so no change is ever
        # missed, and none is added twice.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SET LOCAL work_mem = '128MB'")  # sorts of a bulk recount stay in memory
        row = conn.execute(
            "SELECT (SELECT max(id) FROM figures_dirty), (SELECT max(id) FROM figures_delta)"
        ).fetchone()
        high, delta_high = (row[0], row[1]) if row else (None, None)
        conn.execute(
            "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT DISTINCT facility_id, service_date"
            " FROM figures_dirty WHERE id <= %s",
            (high or 0,),
        )
        conn.execute(
            "CREATE TEMP TABLE _dirty_months ON COMMIT DROP AS SELECT DISTINCT facility_id,"
            " date_trunc('month', service_date::timestamp)::date AS month FROM _dirty"
        )
        # Deltas of days recounted from the raw rows are in that recount already.
        conn.execute(
            """
            CREATE TEMP TABLE _delta ON COMMIT DROP AS
            SELECT d.facility_id, d.service_date, d.program_id, d.person_ref,
                   sum(d.attendances)::integer AS attendances
            FROM figures_delta d
            WHERE d.id <= %s AND NOT EXISTS (
                SELECT 1 FROM _dirty x
                WHERE x.facility_id = d.facility_id AND x.service_date = d.service_date)
            GROUP BY d.facility_id, d.service_date, d.program_id, d.person_ref
            """,
            (delta_high or 0,),
        )
        if high is not None:
            _recount_days(conn)
        conn.execute(
            """
            INSERT INTO figures_member_day AS m
                (facility_id, service_date, program_id, person_ref, attendances)
            SELECT facility_id, service_date, program_id, person_ref, attendances FROM _delta
            ON CONFLICT (facility_id, service_date, program_id, person_ref)
            DO UPDATE SET attendances = m.attendances + EXCLUDED.attendances
            """
        )
        if high is not None:
            _recount_months(conn)
        # Months not recounted take the deltas' days (OR-ed in) and attendances (added).
        conn.execute(
            """
            INSERT INTO figures_member_month AS m
                (facility_id, month, program_id, person_ref, days, attendances, day_mask)
            SELECT facility_id, month, program_id, person_ref,
                   bit_count(mask::bit(32))::integer, attendances, mask
            FROM (
                SELECT d.facility_id, date_trunc('month', d.service_date::timestamp)::date AS month,
                       d.program_id, d.person_ref, sum(d.attendances)::integer AS attendances,
                       bit_or(1 << (extract(day FROM d.service_date)::integer - 1)) AS mask
                FROM _delta d
                GROUP BY 1, 2, 3, 4
            ) AS x
            WHERE NOT EXISTS (
                SELECT 1 FROM _dirty_months y
                WHERE y.facility_id = x.facility_id AND y.month = x.month)
            ON CONFLICT (facility_id, month, program_id, person_ref) DO UPDATE SET
                day_mask = m.day_mask | EXCLUDED.day_mask,
                days = bit_count((m.day_mask | EXCLUDED.day_mask)::bit(32))::integer,
                attendances = m.attendances + EXCLUDED.attendances
            """
        )
        days_row = conn.execute("SELECT count(*) FROM _dirty").fetchone()
        conn.execute(
            "INSERT INTO _dirty_months SELECT DISTINCT facility_id,"
            " date_trunc('month', service_date::timestamp)::date FROM _delta"
            " EXCEPT SELECT facility_id, month FROM _dirty_months"
        )
        months_row = conn.execute("SELECT count(*) FROM _dirty_months").fetchone()
        conn.execute("DELETE FROM figures_dirty WHERE id <= %s", (high or 0,))
        conn.execute("DELETE FROM figures_delta WHERE id <= %s", (delta_high or 0,))
        _renew_generations(conn)
        days = int(days_row[0]) if days_row else 0
        conn.execute(
            "INSERT INTO figures_refresh_state (name, refreshed_at, last_dirty_id, days)"
            " VALUES ('member_day', now(), %s, %s) ON CONFLICT (name) DO UPDATE SET"
            " refreshed_at = EXCLUDED.refreshed_at, last_dirty_id = EXCLUDED.last_dirty_id,"
            " days = EXCLUDED.days",
            (high or 0, days),
        )
        return days, int(months_row[0]) if months_row else 0


def _recount_days(conn: psycopg.Connection[Any]) -> None:
    """Recount the day rollup of the dirty (facility, day)s (`_dirty`) from the raw rows."""
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
        -- In key order: after a bulk load (every day dirty) the index grows at its end
        -- instead of taking millions of random inserts.
        ORDER BY facility_id, service_date, program_id, person_ref
        """
    )


def _recount_months(conn: psycopg.Connection[Any]) -> None:
    """Recount the month rollup of the dirty (facility, month)s from the day rollup."""
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


def _renew_generations(conn: psycopg.Connection[Any], *, ref_ids: list[int] | None = None) -> None:
    """Give the recounted months (`_dirty_months`) and the months of persons whose registry
    data changed (the markers `ref_ids`, or every visible one) a new generation, so every
    process's figures cube reloads exactly those months.

    On plain PostgreSQL this runs in the refresh's REPEATABLE READ transaction: markers
    committed after its snapshot stay for the next refresh.
    """
    conn.execute(
        """
        WITH refs AS (
            DELETE FROM figures_dirty_refs
            WHERE %(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[])
            RETURNING person_ref
        ),
        months AS (
            SELECT facility_id, month FROM _dirty_months
            UNION
            SELECT m.facility_id, m.month FROM figures_member_month m
            WHERE m.person_ref IN (SELECT person_ref FROM refs)
        )
        INSERT INTO figures_month_generation (facility_id, month, generation)
        SELECT facility_id, month, nextval('figures_generation_seq') FROM months
        ON CONFLICT (facility_id, month) DO UPDATE SET generation = EXCLUDED.generation
        """,
        {"ids": ref_ids},
    )


def _refresh_timescale(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Refresh the day aggregate, recount the month rows of the marked days' persons, and
    renew the generations of the changed months.

    The markers are read before the aggregate is refreshed: a marker commits with its rows,
    so every row behind a marker read here is in the refreshed aggregate, and only the markers
    read here are deleted afterwards (later ones stay for the next refresh).
    """
    markers = conn.execute(
        "SELECT id, occurred_lo, occurred_hi FROM figures_dirty ORDER BY id"
    ).fetchall()
    refs = conn.execute("SELECT id FROM figures_dirty_refs").fetchall()
    # Rows written with COPY leave no invalidation in TimescaleDB 2.28 (migration 0044), so the
    # spans of occurred_at the markers carry are re-materialized whatever the log says (force);
    # a NULL window then takes every other invalidated range. Neither can run inside a
    # transaction block (autocommit here).
    for lo, hi in _day_windows([(r[1], r[2]) for r in markers]):
        conn.execute(
            "CALL refresh_continuous_aggregate(%s, %s, %s, force => true, options => %s)",
            (_DAY_CAGG, lo, hi, _ONE_BATCH),
        )
    conn.execute(
        "CALL refresh_continuous_aggregate(%s, NULL, NULL, options => %s)", (_DAY_CAGG, _ONE_BATCH)
    )
    ids = [r[0] for r in markers]
    ref_ids = [r[0] for r in refs]
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(
            "CREATE TEMP TABLE _dirty ON COMMIT DROP AS SELECT DISTINCT facility_id, service_date"
            " FROM figures_dirty WHERE id = ANY(%s)",
            (ids,),
        )
        _recount_contacts(conn)
        _recount_marked_months(conn)
        _renew_generations(conn, ref_ids=ref_ids)
        row = conn.execute("SELECT count(*) FROM _dirty_months").fetchone()
        conn.execute("DELETE FROM figures_dirty WHERE id = ANY(%s)", (ids,))
    return len(ids), int(row[0]) if row else 0


# The day rows of the TimescaleDB path: the day aggregate (one row per UTC-day bucket, so a
# service day may have two) and the community contacts counted at refreshes.
_TS_DAY_ROWS: Final[LiteralString] = """
    SELECT facility_id, service_date, program_id, person_ref, attendances
    FROM figures_member_day_cagg
    UNION ALL
    SELECT facility_id, service_date, program_id, person_ref, attendances
    FROM figures_contact_day
"""


def _recount_marked_months(conn: psycopg.Connection[Any]) -> None:
    """Recount the month rows of every person on a marked day (`_dirty`) — those in the day
    rows now and those whose month row has that day's bit (gone since) — from the day rows;
    leaves their (facility, month)s in `_dirty_months`."""
    conn.execute(
        sql.SQL("""
        CREATE TEMP TABLE _keys ON COMMIT DROP AS
        SELECT d.facility_id, date_trunc('month', d.service_date::timestamp)::date AS month,
               d.program_id, d.person_ref
        FROM ({rows}) AS d
        JOIN _dirty x ON x.facility_id = d.facility_id AND x.service_date = d.service_date
        UNION
        SELECT m.facility_id, m.month, m.program_id, m.person_ref
        FROM figures_member_month m
        JOIN _dirty x ON x.facility_id = m.facility_id
                     AND m.month = date_trunc('month', x.service_date::timestamp)::date
                     AND m.day_mask & (1 << (extract(day FROM x.service_date)::integer - 1)) <> 0
        """).format(rows=sql.SQL(_TS_DAY_ROWS))
    )
    conn.execute("ANALYZE _keys")
    conn.execute(
        "DELETE FROM figures_member_month m USING _keys k WHERE m.facility_id = k.facility_id"
        " AND m.month = k.month AND m.program_id = k.program_id AND m.person_ref = k.person_ref"
    )
    # Days are the bits of the OR (a service day split over two UTC buckets sets its bit twice).
    conn.execute(
        sql.SQL("""
        INSERT INTO figures_member_month
            (facility_id, month, program_id, person_ref, days, attendances, day_mask)
        SELECT k.facility_id, k.month, k.program_id, k.person_ref,
               bit_count(bit_or(1 << (extract(day FROM d.service_date)::integer - 1))::bit(32))
                   ::integer,
               sum(d.attendances)::integer,
               bit_or(1 << (extract(day FROM d.service_date)::integer - 1))
        FROM _keys k
        JOIN ({rows}) AS d
          ON d.person_ref = k.person_ref AND d.facility_id = k.facility_id
         AND d.program_id = k.program_id AND d.service_date >= k.month
         AND d.service_date < (k.month + INTERVAL '1 month')::date
        GROUP BY k.facility_id, k.month, k.program_id, k.person_ref
        """).format(rows=sql.SQL(_TS_DAY_ROWS))
    )
    conn.execute(
        "CREATE TEMP TABLE _dirty_months ON COMMIT DROP AS SELECT DISTINCT facility_id, month"
        " FROM _keys"
    )


def _day_windows(
    spans: list[tuple[datetime | None, datetime | None]],
) -> list[tuple[datetime, datetime]]:
    """The whole UTC days (the day aggregate's buckets) covering the markers' spans of
    occurred_at, overlapping or touching windows merged; markers without a span are skipped."""
    days = sorted(
        (_utc_day(lo), _utc_day(hi) + timedelta(days=1))
        for lo, hi in spans
        if lo is not None and hi is not None
    )
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in days:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _utc_day(at: datetime) -> datetime:
    """The start of the UTC day of `at` (the bucket of time_bucket('1 day', at))."""
    return datetime.combine(at.astimezone(UTC).date(), datetime.min.time(), UTC)


def _recount_contacts(conn: psycopg.Connection[Any]) -> None:
    """Recount the community contacts of the marked (facility, day)s (`_dirty`) into the
    table the TimescaleDB views read them from (migration 0044)."""
    conn.execute(
        "DELETE FROM figures_contact_day d USING _dirty x"
        " WHERE d.facility_id = x.facility_id AND d.service_date = x.service_date"
    )
    conn.execute(
        """
        INSERT INTO figures_contact_day
            (facility_id, service_date, program_id, person_ref, attendances)
        SELECT c.facility_id, c.service_date, c.program_id, c.contact_code, count(*)::integer
        FROM community_contacts c
        JOIN _dirty x ON x.facility_id = c.facility_id AND x.service_date = c.service_date
        WHERE c.program_id IS NOT NULL
        GROUP BY c.facility_id, c.service_date, c.program_id, c.contact_code
        """
    )
