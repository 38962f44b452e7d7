"""Keeps the figures' rollup current in the background, so that reading figures never writes."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime

import psycopg

from ingest_api.core.db import Pool
from ingest_api.figures import cube, rollup

_LOG = logging.getLogger(__name__)


class RollupRefresher:
    """A thread that brings the rollup up to date every `interval_s` while anything changed."""

    def __init__(self, pool: Pool, *, interval_s: float) -> None:
        """Refresh through connections of `pool`; `start()` begins."""
        self._pool = pool
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0

    def start(self) -> None:
        """Start refreshing in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollup-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the refresh in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        """Refresh when something is pending, then bring this process's figures cube up to
        date (last year and this one), so questions find their months loaded; a database
        outage is logged and retried."""
        warmed = False
        while not self._stop.wait(self._interval_s):
            try:
                with self._pool.connection() as conn:
                    changed = rollup.pending(conn)
                    if changed:
                        rollup.refresh(conn)
                        self.refreshes += 1
                    if changed or not warmed:
                        today = datetime.now(UTC).date()
                        cube.warm(
                            conn,
                            first_month=date(today.year - 1, 1, 1),
                            last_month=today.replace(day=1),
                        )
                        conn.rollback()  # end the read transaction; nothing was written
                        warmed = True
            except (psycopg.Error, OSError) as exc:
                _LOG.warning("rollup refresh failed (%s); retrying", exc)
            except Exception:  # a pool timeout while the database is away, say
                _LOG.exception("rollup refresh failed; retrying")
