"""The security housekeeping the service does in the background (and `welfare audit maintain`).

Creates next month's audit partition ahead of time, drops audit months past the 3-year
retention (the database function decides, never younger ones), ends expired sessions, forgets
old failed sign-ins, and records abnormal use found in the audit log (logged as warnings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest_api.core import audit
from ingest_api.core.config import Settings
from ingest_api.core.db import Pool
from ingest_api.core.periodic import Periodic
from ingest_api.core.sessions import purge_sessions

_LOG = logging.getLogger(__name__)
# Failed sign-ins of a name are forgotten a day after the last one (lockouts end before).
FORGET_FAILURES_AFTER = timedelta(days=1)
# How far back each run looks for abnormal use (runs overlap; alerts are recorded once).
ALERT_LOOKBACK = timedelta(hours=25)


@dataclass(frozen=True, slots=True)
class MaintenanceResult:
    """What one run did."""

    dropped: list[str]
    sessions_ended: int
    new_alerts: list[audit.Alert]


def run_once(
    conn: psycopg.Connection[Any], *, settings: Settings, now: datetime
) -> MaintenanceResult:
    """One housekeeping pass, committed."""
    policy = settings.security
    with conn.transaction():
        audit.ensure_partitions(conn, now=now)
        dropped = audit.drop_expired(conn)
        ended = purge_sessions(conn, now=now, idle_minutes=policy.idle_minutes)
        conn.execute(
            "DELETE FROM sign_in_attempts WHERE last_failure_at < %s"
            " AND (locked_until IS NULL OR locked_until < %s)",
            (now - FORGET_FAILURES_AFTER, now),
        )
        alerts = audit.find_alerts(
            conn,
            since=now - ALERT_LOOKBACK,
            reads_per_hour=policy.alert_member_reads_per_hour,
            work_start_hour=policy.work_start_hour,
            work_end_hour=policy.work_end_hour,
            timezone=settings.timezone,
        )
        new = audit.record_alerts(conn, alerts=alerts)
    for name in dropped:
        _LOG.info("audit retention: dropped %s (older than 3 years)", name)
    return MaintenanceResult(dropped, ended, new)


class SecurityMaintenance(Periodic):
    """`run_once` every `security.maintenance_interval_s`, the first run at start."""

    def __init__(self, pool: Pool, *, settings: Settings) -> None:
        """Use connections of `pool`; `start()` begins."""
        self._pool = pool
        self._settings = settings
        super().__init__(
            "security-maintenance",
            self._once,
            interval_s=settings.security.maintenance_interval_s,
            first_at_once=True,
        )

    def _once(self) -> None:
        """One pass over a pooled connection."""
        with self._pool.connection() as conn:
            run_once(conn, settings=self._settings, now=datetime.now(UTC))
