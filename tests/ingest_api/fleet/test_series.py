"""The heartbeat series' retention: day partitions on plain PostgreSQL, a policy on TimescaleDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from ingest_api.core.migrate import timescaledb_enabled
from ingest_api.fleet import series
from ingest_api.fleet.store import Heartbeat, record_heartbeats
from tests.ingest_api.fleet.conftest import T0, health, seconds

Conn = psycopg.Connection[Any]
DAY = timedelta(days=1)


@pytest.fixture
def conn(database_url: str) -> Iterator[Conn]:
    """A connection to a fresh, migrated database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def receive(conn: Conn, *received: timedelta) -> None:
    """Heartbeats received at T0 + each offset."""
    with conn.cursor() as cur:
        for offset in received:
            record_heartbeats(cur, beats=[Heartbeat(health(at=T0 + offset), T0 + offset)])


def count(conn: Conn, table: str) -> int:
    """Rows of one partition (or of the whole series)."""
    row = conn.execute(
        psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table))
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_day_partitions_are_made_ahead_and_dropped_past_the_retention(conn: Conn) -> None:
    """Nothing refused before the partitions exist; old days go as whole partitions."""
    if timescaledb_enabled(conn):
        pytest.skip("TimescaleDB keeps a hypertable with a retention policy instead")
    receive(conn, timedelta(0), seconds(60), -5 * DAY)  # no partition yet: DEFAULT keeps them
    assert count(conn, series.DEFAULT_PARTITION) == 3
    done = series.maintain(conn, today=T0.date(), retention_days=2)
    assert done.created == [series.partition_name(T0.date() + n * DAY) for n in range(-1, 4)]
    assert done.moved == 2  # today's two heartbeats moved into their day
    assert count(conn, series.partition_name(T0.date())) == 2
    assert count(conn, series.DEFAULT_PARTITION) == 0  # the 5-day-old one was past retention
    receive(conn, DAY, 2 * DAY)
    assert count(conn, series.partition_name(T0.date() + DAY)) == 1
    later = series.maintain(conn, today=T0.date() + 3 * DAY, retention_days=2)
    assert later.dropped == [
        series.partition_name(T0.date() - DAY),
        series.partition_name(T0.date()),
    ]
    assert later.created == [series.partition_name(T0.date() + n * DAY) for n in (4, 5, 6)]
    assert count(conn, "device_heartbeats") == 2
    again = series.maintain(conn, today=T0.date() + 3 * DAY, retention_days=2)
    assert (again.created, again.dropped, again.moved) == ([], [], 0)


def test_timescaledb_retention_policy_follows_the_setting(conn: Conn) -> None:
    """On TimescaleDB the hypertable's policy drops chunks after the configured days."""
    if not timescaledb_enabled(conn):
        pytest.skip("plain PostgreSQL keeps day partitions instead")
    series.maintain(conn, today=T0.date(), retention_days=9)
    row = conn.execute(
        "SELECT (config->>'drop_after')::interval FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = 'device_heartbeats'"
    ).fetchone()
    assert row == (timedelta(days=9),)
