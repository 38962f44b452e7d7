"""Kiosk rosters from the registry: who belongs on one, and issuing it to its device."""

from __future__ import annotations

from collections.abc import Sequence

import paho.mqtt.client as mqtt

from broker.const import QOS_AT_LEAST_ONCE
from broker.models import Roster, RosterMember
from broker.topics import Channel, topic
from ingest_api.core.db import Conn


def roster_members(
    conn: Conn, *, facility_id: str, program_ids: Sequence[str]
) -> list[RosterMember]:
    """Active members of a facility enrolled (now) in any of the programs, with their hashes.

    Suspended, moved-out and deceased members are left out, so their cards stop working at the
    next roster sync; the kiosk never sees a clear card UID.
    """
    rows = conn.execute(
        """
        SELECT m.member_ref, m.display_name,
               array_agg(DISTINCT e.program_id ORDER BY e.program_id),
               coalesce(array_agg(DISTINCT c.credential_hash ORDER BY c.credential_hash)
                        FILTER (WHERE c.credential_hash IS NOT NULL), '{}')
        FROM members m
        JOIN enrolments e ON e.member_ref = m.member_ref AND e.ended_on IS NULL
                         AND e.program_id = ANY(%(programs)s)
        LEFT JOIN member_credentials c ON c.member_ref = m.member_ref AND c.revoked_at IS NULL
        WHERE m.facility_id = %(facility)s AND m.status = 'active'
        GROUP BY m.member_ref, m.display_name
        ORDER BY m.member_ref
        """,
        {"facility": facility_id, "programs": list(program_ids)},
    ).fetchall()
    return [
        RosterMember(
            member_ref=r[0],
            display_name=r[1][:40],
            credential_hashes=list(r[3]),
            program_ids=list(r[2]),
        )
        for r in rows
    ]


def record_roster(conn: Conn, *, roster: Roster) -> None:
    """Remember that this roster version was issued to its device (the ingest checks events)."""
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


def issue_roster(conn: Conn, client: mqtt.Client, *, roster: Roster) -> mqtt.MQTTMessageInfo:
    """Record the roster, then publish it retained to the device (it replaces the last)."""
    with conn.transaction():
        record_roster(conn, roster=roster)
    return client.publish(
        topic(roster.facility_id, roster.device_id, Channel.ROSTER),
        roster.model_dump_json(),
        qos=QOS_AT_LEAST_ONCE,
        retain=True,
    )
