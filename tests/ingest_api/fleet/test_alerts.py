"""Alerts: opened when a condition holds, kept one row while it lasts, resolved when it
clears, acknowledged by operators."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from broker.models import ReaderState
from ingest_api.core.config import FleetSettings
from ingest_api.fleet.monitor import evaluate
from ingest_api.fleet.rosters import expected_rosters, versions_behind
from ingest_api.fleet.store import (
    Heartbeat,
    acknowledge_alert,
    acknowledge_device,
    record_heartbeats,
)
from tests.ingest_api.fleet.conftest import T0, health, seconds

RULES = FleetSettings(
    missed_heartbeats=3,
    slack_s=5,
    check_interval_s=0,
    offline_alert_after_s=600,
    backlog_alert_after_s=1800,
    clock_alert_s=60,
    disk_alert_free_mb=500,
    disk_alert_free_pct=5,
    roster_alert_after_s=600,
)
Conn = psycopg.Connection[Any]


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """A connection to a fresh, migrated database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def receive(conn: Conn, received: datetime, device: str = "meal-1", **fields: object) -> None:
    """The center receives a heartbeat at `received` (reported then unless `at` says)."""
    fields.setdefault("at", received)
    with conn.cursor() as cur:
        record_heartbeats(cur, beats=[Heartbeat(health(device, **fields), received)])  # type: ignore[arg-type]


def open_alerts(conn: Conn) -> dict[str, tuple[int, str]]:
    """kind -> (alert id, detail) of B/meal-1's open alerts."""
    return {
        str(k): (int(i), str(d))
        for k, i, d in conn.execute(
            "SELECT kind, alert_id, detail FROM device_alerts "
            "WHERE device_id = 'meal-1' AND resolved_at IS NULL"
        )
    }


def run(conn: Conn, now: datetime) -> None:
    """One monitor pass at `now`."""
    assert evaluate(conn, now=now, rules=RULES) is not None


def test_a_healthy_device_raises_nothing(conn: Conn) -> None:
    """Heartbeats on time, clock right, readers in, disk free: no alert."""
    receive(conn, T0)
    run(conn, T0 + seconds(5))
    assert open_alerts(conn) == {}


def test_backlog_age_is_measured_without_trusting_the_device_clock(conn: Conn) -> None:
    """A device one hour fast with a 40-minute backlog: backlog and clock alerts, right ages."""
    fast = T0 + seconds(3600)
    receive(conn, T0, at=fast, outbox_pending=42, oldest_pending_at=fast - seconds(40 * 60))
    run(conn, T0 + seconds(5))
    alerts = open_alerts(conn)
    assert alerts["backlog"][1] == "미전송 42건, 가장 오래된 것 40분 전"
    # No ack round trip yet: the heartbeats' arrival bounds the offset (+3600 s).
    assert alerts["clock_skew"][1] == "기기 시계 +3600초"
    # Its own ack-based estimate, when it has one, is preferred.
    receive(
        conn,
        T0 + seconds(10),
        at=fast + seconds(10),
        outbox_pending=42,
        oldest_pending_at=fast - seconds(40 * 60),
        clock_offset_s=0.2,
    )
    run(conn, T0 + seconds(11))
    assert "clock_skew" not in open_alerts(conn)
    # The same alert row follows the condition: its detail is updated, not a new alert.
    receive(
        conn,
        T0 + seconds(20),
        outbox_pending=50,
        oldest_pending_at=T0 + seconds(20 - 50 * 60),
        clock_offset_s=0.2,
    )
    run(conn, T0 + seconds(21))
    assert open_alerts(conn)["backlog"] == (
        alerts["backlog"][0],
        "미전송 50건, 가장 오래된 것 50분 전",
    )


def test_reader_missing_opens_and_clears(conn: Conn) -> None:
    """A reader reported disconnected raises an alert; reconnected, it is resolved."""
    unplugged = {"card-usb": ReaderState(kind="card", connected=False, detail="unplugged")}
    receive(conn, T0, readers=unplugged)
    run(conn, T0 + seconds(1))
    assert open_alerts(conn)["reader_missing"][1] == "연결 끊김: card-usb"
    receive(conn, T0 + seconds(10))
    run(conn, T0 + seconds(11))
    assert open_alerts(conn) == {}
    row = conn.execute("SELECT resolved_at FROM device_alerts").fetchone()
    assert row == (T0 + seconds(11),)


@pytest.mark.parametrize(
    ("free", "total", "detail"),
    [
        (300.0, 15_000.0, "여유 300 MB (2.0%)"),
        (600.0, 20_000.0, "여유 600 MB (3.0%)"),
        (400.0, None, "여유 400 MB"),
    ],
)
def test_disk_nearly_full(conn: Conn, free: float, total: float | None, detail: str) -> None:
    """Below 500 MB, or below 5 % of the disk, is nearly full."""
    receive(conn, T0, disk_free_mb=free, disk_total_mb=total)
    run(conn, T0 + seconds(1))
    assert open_alerts(conn)["disk_low"][1] == detail


def test_offline_longer_than_the_threshold(conn: Conn) -> None:
    """Offline for 10 minutes raises the alert; the next heartbeat resolves it."""
    receive(conn, T0)
    run(conn, T0 + seconds(36))  # offline now
    run(conn, T0 + seconds(36 + 599))
    assert open_alerts(conn) == {}
    run(conn, T0 + seconds(36 + 600))
    assert open_alerts(conn)["offline"][1] == "10분째 오프라인"
    receive(conn, T0 + seconds(900))
    run(conn, T0 + seconds(901))
    assert open_alerts(conn) == {}


def test_roster_behind_after_the_threshold(conn: Conn) -> None:
    """A device holding an older roster than the last issued, for 10 minutes, is behind."""
    conn.execute(
        "INSERT INTO device_rosters (facility_id, device_id, version, issued_at, members) "
        "VALUES ('B', 'meal-1', 'v1', %s, 10), ('B', 'meal-1', 'v2', %s, 10), "
        "('B', 'meal-1', 'v3', %s, 10)",
        (T0 - seconds(7200), T0 - seconds(3600), T0 - seconds(300)),
    )
    receive(conn, T0, roster_version="v1")
    assert expected_rosters(conn)[("B", "meal-1")].version == "v3"
    assert versions_behind(conn) == {("B", "meal-1"): 2}
    run(conn, T0 + seconds(299))
    assert open_alerts(conn) == {}
    run(conn, T0 + seconds(300))
    assert open_alerts(conn)["roster_behind"][1] == "보유 v1, 최신 v3 (10분 전 발행)"
    receive(conn, T0 + seconds(310), roster_version="v3")
    run(conn, T0 + seconds(311))
    assert open_alerts(conn) == {}
    assert versions_behind(conn) == {("B", "meal-1"): 0}


def test_operators_acknowledge_alerts(conn: Conn) -> None:
    """Acknowledging keeps who and when (the first time); it does not close the alert."""
    receive(conn, T0, disk_free_mb=100.0)
    run(conn, T0 + seconds(1))
    alert_id = open_alerts(conn)["disk_low"][0]
    with conn.cursor() as cur:
        assert acknowledge_alert(cur, alert_id=alert_id, actor="op-kim", now=T0 + seconds(2))
        assert acknowledge_alert(cur, alert_id=alert_id, actor="op-lee", now=T0 + seconds(3))
        assert acknowledge_alert(cur, alert_id=alert_id + 999, actor="op", now=T0) is None
        assert (
            acknowledge_device(cur, facility_id="B", device_id="nope", actor="op", now=T0) is None
        )
        assert acknowledge_device(cur, facility_id="B", device_id="meal-1", actor="op", now=T0) == 0
    row = conn.execute(
        "SELECT acknowledged_by, acknowledged_at, resolved_at FROM device_alerts"
    ).fetchone()
    assert row == ("op-kim", T0 + seconds(2), None)
    run(conn, T0 + seconds(4))
    assert "disk_low" in open_alerts(conn)


def test_one_monitor_at_a_time(conn: Conn, database_url: str) -> None:
    """While one app instance evaluates, another's pass is skipped, not doubled."""
    receive(conn, T0, disk_free_mb=100.0)
    with psycopg.connect(database_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(7305227211)")
        assert evaluate(conn, now=T0 + seconds(1), rules=RULES) is None
    assert evaluate(conn, now=T0 + seconds(1), rules=RULES) is not None
    assert list(open_alerts(conn)) == ["disk_low"]


def test_parked_events_raise_an_alert_until_none_is_left(conn: Conn) -> None:
    """A device that parked refused events (contract 1.4) alerts the operators; none, none."""
    receive(conn, T0, outbox_parked=2)
    run(conn, T0 + seconds(1))
    assert open_alerts(conn)["events_parked"][1].startswith("센터가 거부한 이벤트 2건")
    receive(conn, T0 + seconds(30), outbox_parked=0)
    run(conn, T0 + seconds(31))
    assert "events_parked" not in open_alerts(conn)


def test_few_days_of_offline_taps_left_warns_before_the_disk_is_nearly_full(conn: Conn) -> None:
    """2 GB free is plenty of megabytes, but if it holds only 3 days of taps: disk_low."""
    receive(conn, T0, disk_free_mb=2000.0, disk_total_mb=16_000.0, storage_days_left=3.0)
    run(conn, T0 + seconds(1))
    assert open_alerts(conn)["disk_low"][1] == "여유 2000 MB (12.5%), 오프라인 기록 3.0일분"
