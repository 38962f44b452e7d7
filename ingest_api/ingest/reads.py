"""Read-side data functions of the ingest: the fleet's last health, dead letters, counters."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


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
