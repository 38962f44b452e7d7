"""The fleet monitor: a background thread of the app that derives offline devices and alerts.

Every `WELFARE_FLEET__CHECK_INTERVAL_S` it takes silent devices offline and brings the alerts
in line with the conditions (opening, updating, resolving); every hour it keeps the heartbeat
series' partitions and retention. Requests only read what it wrote. Several app instances may
run it: a transaction-level advisory lock lets one evaluate at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import ValidationError

from broker.models import DeviceHealth
from ingest_api.core.config import FleetSettings
from ingest_api.core.db import Conn, Pool
from ingest_api.fleet import series
from ingest_api.fleet.const import MONITOR_LOCK_ID, SKEW_WINDOW, DeviceState
from ingest_api.fleet.rosters import expected_rosters
from ingest_api.fleet.rules import DeviceFacts, ExpectedRoster, conditions
from ingest_api.fleet.store import Transition, facts_rows, mark_silent, sync_alerts

_LOG = logging.getLogger(__name__)
ExpectedFn = Callable[[Conn], dict[tuple[str, str], ExpectedRoster]]
UPKEEP_EVERY_S = 3600.0


@dataclass(frozen=True, slots=True)
class Tick:
    """What one evaluation changed."""

    went_offline: list[Transition]
    opened: int
    resolved: int


def device_facts(row: dict[str, Any], expected: ExpectedRoster | None) -> DeviceFacts:
    """A device_status row (with its best arrival skew) as the facts the alert rules read."""
    try:
        health: DeviceHealth | None = DeviceHealth.model_validate(row["health"])
    except ValidationError:  # a report stored by an older center: judge what is certain
        health = None
    return DeviceFacts(
        facility_id=row["facility_id"],
        device_id=row["device_id"],
        state=DeviceState(row["state"]),
        state_since=row["state_since"],
        last_seen_at=row["last_seen_at"],
        reported_at=row["reported_at"],
        outbox_pending=row["outbox_pending"],
        oldest_pending_at=health.oldest_pending_at if health else None,
        roster_version=health.roster_version if health else None,
        readers={k: v.model_dump() for k, v in health.readers.items()} if health else {},
        disk_free_mb=health.disk_free_mb if health else None,
        disk_total_mb=health.disk_total_mb if health else None,
        clock_offset_s=health.clock_offset_s if health else None,
        outbox_parked=health.outbox_parked if health else None,
        storage_days_left=health.storage_days_left if health else None,
        best_arrival_skew_s=row["best_arrival_skew_s"],
        expected=expected,
    )


def evaluate(
    conn: Conn,
    *,
    now: datetime,
    rules: FleetSettings,
    expected_fn: ExpectedFn = expected_rosters,
) -> Tick | None:
    """One pass: silent devices offline, alerts opened and resolved; None if another runs."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (MONITOR_LOCK_ID,))
        row = cur.fetchone()
        if not (row and row[0]):
            return None
        went_offline = mark_silent(cur, now=now, rules=rules)
        expected = expected_fn(conn)
        wanted: dict[tuple[str, str, str], str] = {}
        for fact_row in facts_rows(cur, skew_since=now - SKEW_WINDOW):
            facts = device_facts(
                fact_row, expected.get((fact_row["facility_id"], fact_row["device_id"]))
            )
            for kind, detail in conditions(facts, now=now, rules=rules).items():
                wanted[(facts.facility_id, facts.device_id, kind.value)] = detail
        opened, resolved = sync_alerts(cur, wanted=wanted, now=now)
    return Tick(went_offline, opened, resolved)


class FleetMonitor:
    """The thread that runs `evaluate` every `check_interval_s` and the series' upkeep hourly."""

    def __init__(
        self,
        pool: Pool,
        *,
        rules: FleetSettings,
        expected_fn: ExpectedFn = expected_rosters,
    ) -> None:
        """Evaluate through connections of `pool`; `start()` begins."""
        self._pool = pool
        self._rules = rules
        self._expected_fn = expected_fn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_upkeep = float("-inf")
        self.passes = 0

    def start(self) -> None:
        """Start in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fleet-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the pass in progress, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def run_once(self) -> Tick | None:
        """One evaluation (and the upkeep when it is due)."""
        with self._pool.connection() as conn:
            if time.monotonic() - self._last_upkeep >= UPKEEP_EVERY_S:
                series.maintain(
                    conn,
                    today=datetime.now(UTC).date(),
                    retention_days=self._rules.heartbeat_retention_days,
                )
                self._last_upkeep = time.monotonic()
            tick = evaluate(
                conn, now=datetime.now(UTC), rules=self._rules, expected_fn=self._expected_fn
            )
        self.passes += 1
        for change in tick.went_offline if tick else []:
            _LOG.info("%s/%s offline (%s)", change.facility_id, change.device_id, change.reason)
        return tick

    def _run(self) -> None:
        """Evaluate until stopped; a database outage is logged and retried."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except psycopg.Error as exc:
                _LOG.warning("fleet monitor pass failed (%s); retrying", exc)
            except Exception:  # a pool timeout while the database is away, say
                _LOG.exception("fleet monitor pass failed; retrying")
            self._stop.wait(self._rules.check_interval_s)
