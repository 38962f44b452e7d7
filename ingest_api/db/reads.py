"""Read-side data functions of the backbone: daily figures, fleet status, dead letters."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row


def daily_figures(
    conn: psycopg.Connection[Any], *, start: date, end: date, facility_id: str | None = None
) -> list[dict[str, Any]]:
    """Unique persons and person-visits per facility and program over [start, end]."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT facility_id, program_id, count(DISTINCT member_ref) AS unique_persons, "
            "count(*) AS person_visits FROM attendance_events "
            "WHERE outcome = 'accepted' AND service_date BETWEEN %(start)s AND %(end)s "
            "AND (%(facility)s::text IS NULL OR facility_id = %(facility)s) "
            "GROUP BY GROUPING SETS ((facility_id, program_id), (facility_id)) "
            "ORDER BY facility_id, program_id NULLS FIRST",
            {"start": start, "end": end, "facility": facility_id},
        )
        return list(cur.fetchall())


def refusals(conn: psycopg.Connection[Any], *, start: date, end: date) -> list[dict[str, Any]]:
    """Taps that were not let in, by facility and outcome (unknown cards etc. for staff)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT facility_id, outcome, count(*) AS taps FROM attendance_events "
            "WHERE outcome <> 'accepted' AND service_date BETWEEN %s AND %s "
            "GROUP BY facility_id, outcome ORDER BY facility_id, outcome",
            (start, end),
        )
        return list(cur.fetchall())


def devices(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Latest health of every device."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT facility_id, device_id, last_seen_at, reported_at, outbox_pending, health "
            "FROM device_status ORDER BY facility_id, device_id"
        )
        return list(cur.fetchall())


def dead_letter_summary(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Dead letters by reason (raw payloads stay in the table for staff with access)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT reason, count(*) AS messages, max(received_at) AS last_at "
            "FROM dead_letters GROUP BY reason ORDER BY reason"
        )
        return list(cur.fetchall())


def metrics(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The consumer's counters."""
    return {str(n): int(v) for n, v in conn.execute("SELECT name, value FROM ingest_metrics")}
