"""Kiosk rosters from the registry: who belongs on one, its versions, and the deltas between.

A device's roster is built from the registry (`build_roster`): the programs it serves with
their weekly pattern and the sittings of today and the coming week, and the members enrolled
in them — active members, and for a while members who became inactive, with their status, so
the kiosk tells them to see staff instead of "unknown card". Names are shown as the facility
configures (masked at the center already), cards only as keyed hashes under the facility's
key versions in use. Each version is identified by its content hash (broker/roster.py); the
per-member digests of the versions a device may hold are kept to build a delta from any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from psycopg.types.json import Jsonb

from broker.const import QOS_AT_LEAST_ONCE
from broker.face import to_text
from broker.models import FaceTemplate, Roster, RosterMember, mask_name
from broker.roster import member_digest, roster_hash
from broker.topics import Channel, topic
from broker.vocabulary import NameDisplay
from ingest_api.core.db import Conn
from ingest_api.registry import face, keys, schedules
from ingest_api.registry.const import INACTIVE_KEPT_DAYS, SITTING_DAYS


def roster_members(
    conn: Conn,
    *,
    facility_id: str,
    program_ids: Sequence[str],
    key_versions: Sequence[int] | None = None,
    name_display: NameDisplay = NameDisplay.FULL,
) -> list[RosterMember]:
    """Members of a facility enrolled (now) in any of the programs, with their card hashes.

    Active members, and members suspended, moved out or deceased within the last
    INACTIVE_KEPT_DAYS days with that status (their card is refused at the kiosk with "see
    staff"); after that they leave every roster. Only hashes under `key_versions` (default:
    the facility's versions in use) are included; the kiosk never sees a clear card UID.
    """
    versions = list(key_versions or keys.in_use(conn, facility_id=facility_id))
    rows = conn.execute(
        """
        SELECT m.member_ref, m.display_name, m.status,
               array_agg(DISTINCT e.program_id ORDER BY e.program_id),
               coalesce(array_agg(DISTINCT c.credential_hash ORDER BY c.credential_hash)
                        FILTER (WHERE c.credential_hash IS NOT NULL), '{}')
        FROM members m
        JOIN enrolments e ON e.member_ref = m.member_ref AND e.ended_on IS NULL
                         AND e.program_id = ANY(%(programs)s)
        LEFT JOIN member_credentials c ON c.member_ref = m.member_ref AND c.revoked_at IS NULL
                                      AND c.key_version = ANY(%(versions)s)
        WHERE m.facility_id = %(facility)s
          AND (m.status = 'active' OR m.updated_at > now() - make_interval(days => %(kept)s))
          -- An erased person's pseudonym holds attendances only: never a kiosk's business.
          AND m.status <> 'erased'
        GROUP BY m.member_ref, m.display_name, m.status
        ORDER BY m.member_ref
        """,
        {
            "facility": facility_id,
            "programs": list(program_ids),
            "versions": versions,
            "kept": INACTIVE_KEPT_DAYS,
        },
    ).fetchall()
    show = mask_name if name_display is NameDisplay.MASKED else str
    # Sealed face templates of active members with a face consent (docs/face.md), as stored.
    faces = face.sealed_templates(
        conn, facility_id=facility_id, member_refs=[r[0] for r in rows], key_versions=versions
    )
    return [
        RosterMember(
            member_ref=r[0],
            display_name=show(str(r[1]))[:40],
            status=r[2],
            credential_hashes=list(r[4]),
            program_ids=list(r[3]),
            face_template=(
                FaceTemplate(key_id=faces[r[0]][0], sealed=to_text(faces[r[0]][1]))
                if r[0] in faces
                else None
            ),
        )
        for r in rows
    ]


def device_program_ids(conn: Conn, *, facility_id: str, device_id: str) -> list[str]:
    """The programs a device serves."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT program_id FROM device_programs WHERE facility_id = %s AND device_id = %s "
            "ORDER BY program_id",
            (facility_id, device_id),
        )
    ]


def build_roster(
    conn: Conn,
    *,
    facility_id: str,
    device_id: str,
    today: date,
    issued_at: datetime,
    timezone: str,
) -> Roster:
    """The whole roster the device should hold now (unsigned; version from its content)."""
    row = conn.execute(
        "SELECT name_display FROM facilities WHERE facility_id = %s", (facility_id,)
    ).fetchone()
    display = NameDisplay(row[0]) if row else NameDisplay.MASKED
    program_ids = device_program_ids(conn, facility_id=facility_id, device_id=device_id)
    roster = Roster(
        facility_id=facility_id,
        device_id=device_id,
        version="building",
        issued_at=issued_at,
        timezone=timezone,
        programs=schedules.weekly_pattern(conn, program_ids=program_ids),
        sittings=schedules.sittings(
            conn, facility_id=facility_id, program_ids=program_ids, start=today, days=SITTING_DAYS
        ),
        sittings_until=today + timedelta(days=SITTING_DAYS - 1),
        members=roster_members(
            conn, facility_id=facility_id, program_ids=program_ids, name_display=display
        ),
    )
    digest = roster_hash(roster)
    # Unique per build (a resync rebuilds the same content under a new name the kiosk applies).
    stamp = f"{issued_at:%Y%m%d%H%M%S}{issued_at.microsecond // 1000:03d}"
    return roster.model_copy(update={"version": f"{stamp}-{digest[:12]}", "content_hash": digest})


# -- versions the center issued ------------------------------------------------------------


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


def store_version(conn: Conn, *, roster: Roster) -> None:
    """Keep a newly built whole roster: issued log, member digests, the device's latest."""
    assert roster.content_hash is not None
    assert not roster.is_delta
    record_roster(conn, roster=roster)
    conn.execute(
        "INSERT INTO roster_contents (facility_id, device_id, version, content_hash, digests) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            roster.facility_id,
            roster.device_id,
            roster.version,
            roster.content_hash,
            Jsonb({m.member_ref: member_digest(m) for m in roster.members}),
        ),
    )
    conn.execute(
        "INSERT INTO device_roster_state (facility_id, device_id, latest_version, latest_hash, "
        "built_at) VALUES (%s, %s, %s, %s, now()) ON CONFLICT (facility_id, device_id) DO UPDATE "
        "SET latest_version = EXCLUDED.latest_version, latest_hash = EXCLUDED.latest_hash, "
        "built_at = EXCLUDED.built_at",
        (roster.facility_id, roster.device_id, roster.version, roster.content_hash),
    )


def digests_of(conn: Conn, *, facility_id: str, device_id: str, version: str) -> dict[str, str]:
    """Member digests of a version the center still keeps (KeyError when pruned or unknown)."""
    row = conn.execute(
        "SELECT digests FROM roster_contents WHERE facility_id = %s AND device_id = %s "
        "AND version = %s",
        (facility_id, device_id, version),
    ).fetchone()
    if row is None:
        raise KeyError(version)
    found: dict[str, Any] = row[0]
    return {str(k): str(v) for k, v in found.items()}


def prune_contents(conn: Conn, *, facility_id: str, device_id: str) -> int:
    """Forget digests of versions the device can no longer hold (not latest, sent or reported)."""
    cur = conn.execute(
        """
        DELETE FROM roster_contents c
        WHERE c.facility_id = %(f)s AND c.device_id = %(d)s
          AND c.version IS DISTINCT FROM (SELECT latest_version FROM device_roster_state
                                          WHERE facility_id = %(f)s AND device_id = %(d)s)
          AND c.version IS DISTINCT FROM (SELECT sent_version FROM device_roster_state
                                          WHERE facility_id = %(f)s AND device_id = %(d)s)
          AND c.version IS DISTINCT FROM (SELECT roster_version FROM device_sync_reports
                                          WHERE facility_id = %(f)s AND device_id = %(d)s)
        """,
        {"f": facility_id, "d": device_id},
    )
    return max(cur.rowcount, 0)


def issue_roster(conn: Conn, client: mqtt.Client, *, roster: Roster) -> mqtt.MQTTMessageInfo:
    """Record a roster, then publish it to its device as it is (tools and tests)."""
    with conn.transaction():
        record_roster(conn, roster=roster)
    return client.publish(
        topic(roster.facility_id, roster.device_id, Channel.ROSTER),
        roster.model_dump_json(),
        qos=QOS_AT_LEAST_ONCE,
    )
