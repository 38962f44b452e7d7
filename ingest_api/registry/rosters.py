"""Who belongs on a kiosk roster: active members enrolled in its programs, hashed cards only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from broker.models import RosterMember


def roster_members(
    conn: psycopg.Connection[Any], *, facility_id: str, program_ids: Sequence[str]
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
