"""Online/offline as the center derives it: grace period, hysteresis, last will, heartbeats."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from ingest_api.core.config import FleetSettings
from ingest_api.fleet.const import DeviceState, StateReason
from ingest_api.fleet.rules import is_late, is_silent, offline_grace
from ingest_api.fleet.store import (
    Heartbeat,
    Presence,
    mark_silent,
    record_heartbeats,
    record_presence,
)
from tests.ingest_api.fleet.conftest import T0, health, presence, seconds

RULES = FleetSettings(missed_heartbeats=3, slack_s=5, check_interval_s=0)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a fresh, migrated database (autocommit: each call commits)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def beat(conn: psycopg.Connection[Any], at: datetime, **kw: object) -> list[object]:
    """Receive one heartbeat of B/meal-1 at `at` (device clock right)."""
    with conn.cursor() as cur:
        return list(record_heartbeats(cur, beats=[Heartbeat(health(at=at, **kw), at)]))  # type: ignore[arg-type]


def state(conn: psycopg.Connection[Any]) -> tuple[str, datetime]:
    """B/meal-1's state and since when."""
    row = conn.execute(
        "SELECT state, state_since FROM device_status WHERE device_id = 'meal-1'"
    ).fetchone()
    assert row is not None
    return str(row[0]), row[1]


def log(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """B/meal-1's transitions, oldest first."""
    return [
        (str(s), str(r))
        for s, r in conn.execute(
            "SELECT state, reason FROM device_state_log WHERE device_id = 'meal-1' ORDER BY id"
        )
    ]


def silent_check(conn: psycopg.Connection[Any], now: datetime) -> int:
    """One monitor pass of the silence rule at `now`; returns how many went offline."""
    with conn.cursor() as cur:
        return len(mark_silent(cur, now=now, rules=RULES))


def test_grace_counts_missed_heartbeats_of_the_devices_own_interval() -> None:
    """3 missed 10 s heartbeats + 5 s slack = 35 s; a device that does not say assumes 60 s."""
    assert offline_grace(10.0, RULES) == seconds(35)
    assert offline_grace(None, RULES) == seconds(185)
    assert not is_silent(last_seen_at=T0, interval_s=10, now=T0 + seconds(35), rules=RULES)
    assert is_silent(last_seen_at=T0, interval_s=10, now=T0 + seconds(35.1), rules=RULES)
    # Late is only shown: one and a half intervals without a heartbeat.
    assert not is_late(last_seen_at=T0, interval_s=10, now=T0 + seconds(15), rules=RULES)
    assert is_late(last_seen_at=T0, interval_s=10, now=T0 + seconds(15.1), rules=RULES)


def test_silent_beyond_grace_is_offline_and_back_online_at_the_next_heartbeat(
    conn: psycopg.Connection[Any],
) -> None:
    """Offline only after the grace period; online again exactly at the next heartbeat."""
    assert len(beat(conn, T0)) == 1  # first heartbeat: online
    assert state(conn) == ("online", T0)
    assert silent_check(conn, T0 + seconds(35)) == 0
    assert silent_check(conn, T0 + seconds(36)) == 1
    assert state(conn) == ("offline", T0 + seconds(36))
    assert silent_check(conn, T0 + seconds(100)) == 0  # already offline: no new transition
    back = T0 + seconds(200)
    beat(conn, back)
    assert state(conn) == ("online", back)
    assert log(conn) == [
        ("online", StateReason.FIRST_HEARTBEAT),
        ("offline", StateReason.SILENT),
        ("online", StateReason.HEARTBEAT),
    ]


def test_late_heartbeats_within_grace_never_flap(
    conn: psycopg.Connection[Any],
) -> None:
    """Heartbeats up to three intervals apart (a lossy link) keep the device online."""
    at = T0
    beat(conn, at)
    for gap in (10, 25, 12, 34, 30, 10, 33, 19):
        for check in range(1, gap):  # the monitor checks every second in between
            assert silent_check(conn, at + seconds(check)) == 0
        at += seconds(gap)
        beat(conn, at)
    assert log(conn) == [("online", StateReason.FIRST_HEARTBEAT)]


def test_a_heartbeat_committed_first_wins_over_the_silence_rule(
    conn: psycopg.Connection[Any], database_url: str
) -> None:
    """The monitor's update is guarded by what it read: a newer heartbeat keeps it online."""
    beat(conn, T0)
    with psycopg.connect(database_url) as monitor, monitor.cursor() as cur:
        cur.execute("SELECT last_seen_at FROM device_status")  # the monitor reads T0 ...
        beat(conn, T0 + seconds(30))  # ... a heartbeat commits meanwhile ...
        cur.execute(
            "UPDATE device_status SET state = 'offline' WHERE state = 'online' "
            "AND last_seen_at = %s",
            (T0,),
        )  # ... and the guarded update (mark_silent's) changes nothing
        assert cur.rowcount == 0
    with conn.cursor() as cur:
        assert mark_silent(cur, now=T0 + seconds(40), rules=RULES) == []
    assert state(conn)[0] == "online"


def test_last_will_and_clean_stop_take_a_device_offline(
    conn: psycopg.Connection[Any],
) -> None:
    """The broker's (delayed) will or a clean stop is offline at once; connecting is online."""
    beat(conn, T0)
    with conn.cursor() as cur:
        # A will delivered late, older than the last heartbeat, is ignored.
        record_presence(cur, items=[Presence(presence(reason="connection_lost"), T0 - seconds(1))])
    assert state(conn)[0] == "online"
    with conn.cursor() as cur:
        record_presence(cur, items=[Presence(presence(reason="connection_lost"), T0 + seconds(5))])
    assert state(conn) == ("offline", T0 + seconds(5))
    with conn.cursor() as cur:
        record_presence(
            cur,
            items=[
                Presence(presence(state="online", reason="connected"), T0 + seconds(9)),
                Presence(presence(reason="shutdown"), T0 + seconds(20)),
            ],
        )
    assert state(conn) == ("offline", T0 + seconds(20))
    assert log(conn)[1:] == [
        ("offline", StateReason.CONNECTION_LOST),
        ("online", StateReason.CONNECTED),
        ("offline", StateReason.SHUTDOWN),
    ]
    row = conn.execute("SELECT last_presence FROM device_status").fetchone()
    assert row == ("shutdown",)


def test_presence_of_a_device_never_heard_of_is_skipped(
    conn: psycopg.Connection[Any],
) -> None:
    """No heartbeat yet: nothing to mark (its first heartbeat follows the connection)."""
    with conn.cursor() as cur:
        assert record_presence(cur, items=[Presence(presence(reason="shutdown"), T0)]) == []
    assert conn.execute("SELECT count(*) FROM device_status").fetchone() == (0,)


def test_heartbeats_are_a_series_stored_once_and_the_newest_wins(
    conn: psycopg.Connection[Any],
) -> None:
    """A re-delivered heartbeat is one row; one that arrives after a newer one is history."""
    first = health(at=T0, outbox_pending=5)
    with conn.cursor() as cur:
        record_heartbeats(cur, beats=[Heartbeat(first, T0 + seconds(1))])
        record_heartbeats(cur, beats=[Heartbeat(first, T0 + seconds(40))])  # QoS 1 redelivery
        newer = health(at=T0 + seconds(10), outbox_pending=2)
        record_heartbeats(cur, beats=[Heartbeat(newer, T0 + seconds(11))])
        older = health(at=T0 + seconds(5), outbox_pending=9)
        record_heartbeats(cur, beats=[Heartbeat(older, T0 + seconds(6))])  # a slower worker
    rows = conn.execute(
        "SELECT outbox_pending, arrival_skew_s FROM device_heartbeats ORDER BY received_at"
    ).fetchall()
    assert rows == [(5, -1.0), (9, -1.0), (2, -1.0)]
    assert conn.execute("SELECT outbox_pending FROM device_status").fetchone() == (2,)


def test_two_devices_in_one_batch(conn: psycopg.Connection[Any]) -> None:
    """A batch with several devices' heartbeats updates each, and only its own."""
    with conn.cursor() as cur:
        record_heartbeats(
            cur,
            beats=[
                Heartbeat(health("meal-1", at=T0), T0),
                Heartbeat(health("class-1", facility="A", at=T0), T0),
            ],
        )
        went = mark_silent(cur, now=T0 + seconds(36), rules=RULES)
    assert {(t.facility_id, t.device_id, t.state) for t in went} == {
        ("B", "meal-1", DeviceState.OFFLINE),
        ("A", "class-1", DeviceState.OFFLINE),
    }
