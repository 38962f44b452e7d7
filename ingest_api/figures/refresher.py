"""Keeps the figures' rollup current in the background, so that reading figures never writes."""

from __future__ import annotations

from ingest_api.core.db import Pool
from ingest_api.core.periodic import Periodic
from ingest_api.figures import rollup


class RollupRefresher(Periodic):
    """A thread that brings the rollup up to date every `interval_s` while anything changed."""

    def __init__(self, pool: Pool, *, interval_s: float) -> None:
        """Refresh through connections of `pool`; `start()` begins."""
        self._pool = pool
        self.refreshes = 0
        super().__init__("rollup-refresher", self._once, interval_s=interval_s, first_at_once=False)

    def _once(self) -> None:
        """Refresh when something is pending."""
        with self._pool.connection() as conn:
            if rollup.pending(conn):
                rollup.refresh(conn)
                self.refreshes += 1
