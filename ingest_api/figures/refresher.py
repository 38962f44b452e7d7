"""Keeps the figures' rollup current in the background, so that reading figures never writes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ingest_api.core.db import Pool
from ingest_api.core.periodic import Periodic
from ingest_api.figures import cube, rollup


class RollupRefresher(Periodic):
    """A thread that brings the rollup up to date every `interval_s` while anything changed,
    then this process's figures cube (so questions find their months loaded)."""

    def __init__(self, pool: Pool, *, interval_s: float) -> None:
        """Refresh through connections of `pool`; `start()` begins."""
        self._pool = pool
        self.refreshes = 0
        self._warmed = False
        super().__init__("rollup-refresher", self._once, interval_s=interval_s, first_at_once=False)

    def _once(self) -> None:
        """Refresh when something is pending; warm the cube for last year and this one."""
        with self._pool.connection() as conn:
            changed = rollup.pending(conn)
            if changed:
                rollup.refresh(conn)
                self.refreshes += 1
            if changed or not self._warmed:
                today = datetime.now(UTC).date()
                cube.warm(
                    conn, first_month=date(today.year - 1, 1, 1), last_month=today.replace(day=1)
                )
                conn.rollback()  # end the read transaction; nothing was written
                self._warmed = True
