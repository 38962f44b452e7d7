"""The center's own backup in the operators' alert list (kind `backup_failed`, center/backup).

`welfare recovery backup` and `welfare recovery check` open the alert when a base backup or
the WAL archive fails (a missing or full target, pg_basebackup failing, the archiver failing)
and resolve it when one succeeds; the fleet monitor's rules never touch it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ingest_api.fleet.const import AlertKind

# The pseudo-device the center's backup alerts are filed under.
BACKUP_SOURCE = ("center", "backup")


def raise_backup_alert(conn: psycopg.Connection[Any], *, detail: str, now: datetime) -> None:
    """Open the backup alert, or bring an open one's detail up to date."""
    facility_id, device_id = BACKUP_SOURCE
    with conn.transaction():
        updated = conn.execute(
            "UPDATE device_alerts SET detail = %s, updated_at = %s WHERE facility_id = %s "
            "AND device_id = %s AND kind = %s AND resolved_at IS NULL",
            (detail[:500], now, facility_id, device_id, AlertKind.BACKUP_FAILED.value),
        )
        if updated.rowcount == 0:
            conn.execute(
                "INSERT INTO device_alerts (facility_id, device_id, kind, detail, opened_at, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (facility_id, device_id, AlertKind.BACKUP_FAILED.value, detail[:500], now, now),
            )


def resolve_backup_alert(conn: psycopg.Connection[Any], *, now: datetime) -> int:
    """Resolve an open backup alert (a backup or check succeeded); returns how many."""
    facility_id, device_id = BACKUP_SOURCE
    with conn.transaction():
        done = conn.execute(
            "UPDATE device_alerts SET resolved_at = %s, updated_at = %s WHERE facility_id = %s "
            "AND device_id = %s AND kind = %s AND resolved_at IS NULL",
            (now, now, facility_id, device_id, AlertKind.BACKUP_FAILED.value),
        )
    return max(done.rowcount, 0)


def archiver_problem(conn: psycopg.Connection[Any]) -> str | None:
    """Why WAL archiving is not working, or None (pg_stat_archiver and the settings)."""
    mode = conn.execute("SELECT current_setting('archive_mode')").fetchone()
    if mode is None or mode[0] == "off":
        return "WAL 보관(archive_mode)이 꺼져 있습니다"
    row = conn.execute(
        "SELECT failed_count, last_failed_wal, last_failed_time, last_archived_time "
        "FROM pg_stat_archiver"
    ).fetchone()
    if row is None:
        return None
    failed, wal, failed_at, archived_at = row
    if failed and failed_at is not None and (archived_at is None or failed_at > archived_at):
        return f"WAL 보관 실패: {wal} ({failed_at:%Y-%m-%d %H:%M:%S}부터)"
    return None
