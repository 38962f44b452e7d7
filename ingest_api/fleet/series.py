"""The heartbeat time series' upkeep: day partitions and retention (plain PostgreSQL), or the
TimescaleDB retention policy aligned with the setting.

Plain PostgreSQL keeps `device_heartbeats` range-partitioned by day (0026): `maintain` creates
the partitions of the coming days, moves into its day whatever the DEFAULT partition caught,
and drops whole days past the retention — dropping a partition costs nothing, unlike deleting
rows. On TimescaleDB the hypertable's retention policy does the dropping; `maintain` only
makes the policy's `drop_after` equal the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from psycopg import sql

from ingest_api.core.db import Conn
from ingest_api.core.migrate import timescaledb_enabled
from ingest_api.fleet.const import PARTITION_DAYS_AHEAD

TABLE = "device_heartbeats"
DEFAULT_PARTITION = f"{TABLE}_default"
_PARTITION = re.compile(rf"^{TABLE}_p(\d{{8}})$")


@dataclass(frozen=True, slots=True)
class Upkeep:
    """What one maintenance pass did."""

    created: list[str]
    dropped: list[str]
    moved: int
    timescaledb: bool


def partition_name(day: date) -> str:
    """The partition holding the heartbeats received on `day` (UTC)."""
    return f"{TABLE}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def partitions(conn: Conn) -> dict[str, date]:
    """The day partitions that exist, by name."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        (TABLE,),
    ).fetchall()
    found: dict[str, date] = {}
    for (name,) in rows:
        match = _PARTITION.match(str(name))
        if match:
            found[str(name)] = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC).date()
    return found


def _create_day(conn: Conn, day: date) -> int:
    """Create the partition of `day`, moving in the rows the DEFAULT partition holds for it."""
    name = sql.Identifier(partition_name(day))
    start, end = _bounds(day)
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            name, sql.Identifier(TABLE)
        )
    )
    moved = conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE received_at >= %s AND received_at < %s "
            "RETURNING *) INSERT INTO {} SELECT * FROM moved"
        ).format(sql.Identifier(DEFAULT_PARTITION), name),
        (start, end),
    ).rowcount
    # DDL takes no parameters: the bounds are composed as literals.
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(TABLE), name, sql.Literal(start), sql.Literal(end)
        )
    )
    return max(moved, 0)


def maintain(conn: Conn, *, today: date, retention_days: int) -> Upkeep:
    """Bring the series' partitions (or TimescaleDB policy) in line with the retention."""
    oldest_kept = today - timedelta(days=retention_days)
    if timescaledb_enabled(conn):
        with conn.transaction():
            _align_policy(conn, retention_days=retention_days)
            conn.execute("DELETE FROM device_state_log WHERE at < %s", (_bounds(oldest_kept)[0],))
        return Upkeep([], [], 0, timescaledb=True)
    created: list[str] = []
    dropped: list[str] = []
    moved = 0
    with conn.transaction():
        existing = partitions(conn)
        for offset in range(-1, PARTITION_DAYS_AHEAD + 1):
            day = today + timedelta(days=offset)
            if partition_name(day) not in existing:
                moved += _create_day(conn, day)
                created.append(partition_name(day))
        for name, day in sorted(existing.items(), key=lambda item: item[1]):
            if day < oldest_kept:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                dropped.append(name)
        # Stragglers the DEFAULT partition caught for days long gone.
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE received_at < %s").format(
                sql.Identifier(DEFAULT_PARTITION)
            ),
            (_bounds(oldest_kept)[0],),
        )
        conn.execute("DELETE FROM device_state_log WHERE at < %s", (_bounds(oldest_kept)[0],))
    return Upkeep(created, dropped, moved, timescaledb=False)


def _align_policy(conn: Conn, *, retention_days: int) -> None:
    """Make the hypertable's retention policy drop chunks older than `retention_days`."""
    wanted = timedelta(days=retention_days)
    row = conn.execute(
        "SELECT (config->>'drop_after')::interval FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = %s",
        (TABLE,),
    ).fetchone()
    if row is not None and row[0] == wanted:
        return
    conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (TABLE,))
    conn.execute("SELECT add_retention_policy(%s, drop_after => %s)", (TABLE, wanted))
