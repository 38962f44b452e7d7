"""A day in the life of the city's eight kiosks, for the operator dashboard's demo and tests.

Everything goes through the center's own data functions — heartbeats through
`record_heartbeats` (what the consumer calls), silence and alerts through the monitor's
`evaluate` run every few simulated minutes — so the history is what the service would have
recorded. The kiosks are the sample centers' (welfare/sample/centers.py); each lives one
story an operator would meet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from broker.const import SOFTWARE_VERSION
from broker.ids import uuid7
from broker.models import DeviceHealth, ReaderState
from ingest_api.core.config import FleetSettings
from ingest_api.fleet.monitor import evaluate
from ingest_api.fleet.store import Heartbeat, acknowledge_alert, record_heartbeats
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.registry import store
from ingest_api.registry.models import Facility
from welfare.sample.centers import CENTERS

HEARTBEAT = timedelta(minutes=2)
EVALUATE_EVERY = timedelta(minutes=10)
HOURS = 24


@dataclass(frozen=True)
class Story:
    """How one kiosk behaves over the day, as functions of the age of a moment (now - t)."""

    silent: Callable[[timedelta], bool] = lambda age: False
    pending: Callable[[timedelta], int] = lambda age: 0
    backlog_since: Callable[[timedelta], timedelta | None] = lambda age: None
    clock_offset_s: float = 0.0
    reader_down: Callable[[timedelta], bool] = lambda age: False
    disk_free_mb: float = 11_000.0
    holds_old_roster: bool = False
    software: str = SOFTWARE_VERSION


def _minutes(n: float) -> timedelta:
    """n minutes."""
    return timedelta(minutes=n)


STORIES: dict[tuple[str, str], Story] = {
    ("A", "door-1"): Story(),
    # A busy meal hall: now and then a few events wait a moment for their confirmation.
    ("B", "meal-1"): Story(pending=lambda age: 6 if int(age / HEARTBEAT) % 15 == 0 else 0),
    # Someone unplugged the card reader two hours ago; the kiosk is online, NFC still works.
    ("B", "meal-2"): Story(reader_down=lambda age: age < timedelta(hours=2)),
    # The oldest center's kiosk went silent 40 minutes ago (a power strip, it turns out).
    ("C", "hall-1"): Story(silent=lambda age: age < _minutes(40)),
    # A flaky uplink: offline for 25 minutes this morning, and a backlog building for 50.
    ("D", "meal-1"): Story(
        silent=lambda age: _minutes(180) < age < _minutes(205),
        pending=lambda age: int(max(0.0, 50 - age.total_seconds() / 60) * 4),
        backlog_since=lambda age: _minutes(50) - age if age < _minutes(50) else None,
    ),
    # Its clock lost 3 minutes, and it missed the roster issued 25 minutes ago.
    ("D", "sports-1"): Story(clock_offset_s=-185.0, holds_old_roster=True),
    # The SD card is nearly full (an operator has seen it: acknowledged).
    ("D", "class-1"): Story(disk_free_mb=380.0),
    ("E", "meal-1"): Story(software="0.1.0rc2"),
}


def _taps(conn: psycopg.Connection[tuple[object, ...]], *, now: datetime) -> None:
    """Taps per hour for the charts: a lunch rush at the meal halls, classes elsewhere."""
    rng = random.Random(5)  # noqa: S311 - sample data
    rows: list[EventRow] = []
    for center in CENTERS:
        for device_id, programs in center.kiosks.items():
            for hours_ago in range(HOURS, 0, -1):
                hour = (now - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
                local = (hour.hour + 9) % 24  # the facilities keep Korean time
                rush = 11 <= local < 13 and programs[0].endswith("MEAL")
                busy = 9 <= local < 18
                count = rng.randint(60, 140) if rush else rng.randint(0, 12) if busy else 0
                for n in range(count):
                    at = hour + timedelta(seconds=rng.uniform(0, 3599))
                    refused = rng.random() < 0.06
                    rows.append(
                        EventRow(
                            event_id=uuid7(at),
                            occurred_at=at.replace(microsecond=at.microsecond // 1000 * 1000),
                            facility_id=center.facility_id,
                            device_id=device_id,
                            service_date=(at + timedelta(hours=9)).date(),
                            program_id=programs[0],
                            member_ref=None if refused else f"{center.facility_id}-S{n:05d}",
                            method="card",
                            outcome="unknown_credential" if refused else "accepted",
                            ticket_no=None,
                            roster_version=f"{center.facility_id}-{device_id}-r42",
                            visitor=None,
                        )
                    )
    with conn.cursor() as cur:
        insert_events(cur, rows=rows)


def _health(
    facility_id: str,
    device_id: str,
    story: Story,
    *,
    at: datetime,
    age: timedelta,
    rng: random.Random,
) -> DeviceHealth:
    """The heartbeat a kiosk with this story sends at `at`."""
    pending = story.pending(age)
    since = story.backlog_since(age)
    readers = {"card-usb": ReaderState(kind="card", connected=not story.reader_down(age))}
    if facility_id in ("B", "E"):
        readers["printer"] = ReaderState(kind="printer", connected=True)
    device_at = at + timedelta(seconds=story.clock_offset_s)
    return DeviceHealth(
        facility_id=facility_id,
        device_id=device_id,
        reported_at=device_at,
        software_version=story.software,
        uptime_s=float(HOURS * 3600) - age.total_seconds() + 3600,
        outbox_pending=pending,
        oldest_pending_at=(device_at - since)
        if pending and since
        else (device_at - timedelta(seconds=2) if pending else None),
        roster_version=f"{facility_id}-{device_id}-r{41 if story.holds_old_roster else 42}",
        readers=readers,
        disk_free_mb=story.disk_free_mb,
        disk_total_mb=14_832.0,
        heartbeat_interval_s=HEARTBEAT.total_seconds(),
        last_ack_at=at - timedelta(seconds=rng.uniform(1, 40)),
        clock_offset_s=story.clock_offset_s + rng.uniform(-0.05, 0.05),
        cpu_temp_c=round(rng.uniform(44, 58), 1),
    )


def seed_fleet(
    conn: psycopg.Connection[tuple[object, ...]], *, now: datetime, rules: FleetSettings
) -> None:
    """Record the day: facilities, issued rosters, heartbeats, taps, states and alerts."""
    for center in CENTERS:
        store.upsert_facility(
            conn, facility=Facility(facility_id=center.facility_id, name=center.name)
        )
        for device_id in center.kiosks:
            issued = [(41, now - timedelta(hours=26)), (42, now - _minutes(25))]
            if (center.facility_id, device_id) != ("D", "sports-1"):
                issued[1] = (42, now - timedelta(hours=18))
            conn.execute(
                "INSERT INTO device_rosters (facility_id, device_id, version, issued_at, members) "
                "SELECT %s, %s, v, at, 300 FROM unnest(%s::text[], %s::timestamptz[]) AS r(v, at)",
                (
                    center.facility_id,
                    device_id,
                    [f"{center.facility_id}-{device_id}-r{n}" for n, _ in issued],
                    [at for _, at in issued],
                ),
            )
    conn.commit()
    _taps(conn, now=now)
    rng = random.Random(3)  # noqa: S311 - sample data
    start = now - timedelta(hours=HOURS)
    t = start
    beats: list[Heartbeat] = []
    while t <= now:
        for (facility_id, device_id), story in STORIES.items():
            age = now - t
            if story.silent(age):
                continue
            # Heartbeats are never exactly on time.
            received = min(t + timedelta(seconds=rng.uniform(0, 4)), now)
            health = _health(facility_id, device_id, story, at=received, age=age, rng=rng)
            beats.append(Heartbeat(health, received))
        t += HEARTBEAT
        # The monitor's view every few minutes: what arrived meanwhile, then its evaluation.
        if t > now or (t - start) % EVALUATE_EVERY < HEARTBEAT:
            with conn.cursor() as cur:
                record_heartbeats(cur, beats=beats)
            conn.commit()
            beats = []
            evaluate(conn, now=min(t, now), rules=rules)
    row = conn.execute(
        "SELECT alert_id FROM device_alerts WHERE facility_id = 'D' AND device_id = 'class-1' "
        "AND kind = 'disk_low' AND resolved_at IS NULL"
    ).fetchone()
    if row is not None:
        with conn.cursor() as cur:
            acknowledge_alert(cur, alert_id=int(str(row[0])), actor="op-kim", now=now - _minutes(5))
    conn.commit()
