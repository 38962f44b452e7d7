"""Rosters the center issues to devices, and the check of events against them."""

from __future__ import annotations

from collections.abc import Sequence

import paho.mqtt.client as mqtt
import psycopg

from broker.const import QOS_AT_LEAST_ONCE
from broker.models import Roster
from broker.topics import Channel, topic
from ingest_api.validation import EventRow

ROSTER_UNKNOWN = "roster_unknown"


def record_roster(conn: psycopg.Connection[tuple[object, ...]], *, roster: Roster) -> None:
    """Remember that this roster version was issued to its device."""
    conn.execute(
        "INSERT INTO device_rosters (facility_id, device_id, version, issued_at, members) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            roster.facility_id,
            roster.device_id,
            roster.version,
            roster.issued_at,
            len(roster.members),
        ),
    )


def issue_roster(
    conn: psycopg.Connection[tuple[object, ...]], client: mqtt.Client, *, roster: Roster
) -> mqtt.MQTTMessageInfo:
    """Record the roster, then publish it retained to the device (it replaces the last)."""
    with conn.transaction():
        record_roster(conn, roster=roster)
    return client.publish(
        topic(roster.facility_id, roster.device_id, Channel.ROSTER),
        roster.model_dump_json(),
        qos=QOS_AT_LEAST_ONCE,
        retain=True,
    )


def flag_unknown_rosters(
    cur: psycopg.Cursor[tuple[object, ...]], *, rows: Sequence[EventRow]
) -> int:
    """Flag events decided with a roster never issued to their device; returns how many."""
    devices = sorted({(r.facility_id, r.device_id) for r in rows})
    if not devices:
        return 0
    cur.execute(
        "SELECT facility_id, device_id, version FROM device_rosters "
        "WHERE (facility_id, device_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([d[0] for d in devices], [d[1] for d in devices]),
    )
    issued: dict[tuple[str, str], set[str]] = {}
    for facility_id, device_id, version in cur.fetchall():
        issued.setdefault((str(facility_id), str(device_id)), set()).add(str(version))
    flagged = 0
    for row in rows:
        versions = issued.get((row.facility_id, row.device_id))
        # Devices the center never sent a roster (loaded locally) are not checked.
        if versions and row.roster_version not in versions:
            row.flags.append(ROSTER_UNKNOWN)
            flagged += 1
    return flagged
