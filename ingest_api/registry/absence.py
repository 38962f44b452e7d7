"""Absence calls: members who stopped coming, and the wellbeing calls staff make to them.

A program's service days are the days it served anyone (an accepted attendance): closures and
days nobody came do not count against a member. A member enrolled in a program is absent after
`absence_days` of those days (the program's own, or the service's default) without an accepted
attendance there, counted from their last one (or from enrolment). The list is computed from
the attendances on every read, so a member who comes back leaves it at their next tap. Calls
made since the member was last seen are shown with the row; that many unanswered calls
(`unanswered_calls_flag`) flag the member to the manager.

Scope: the caller's facility, and for staff with assigned programs, those programs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, LiteralString
from uuid import UUID

from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, absence_note_context, member_context
from ingest_api.core.security import Principal
from ingest_api.registry.identity import mask_phone

OUTCOMES: Final[dict[str, str]] = {
    "reached": "통화됨",
    "not_reached": "받지 않음",
    "needs_visit": "방문 필요",
    "in_hospital": "입원 중",
    "other": "기타",
}
NOTE_MAX: Final = 500

# Enrolled active members of the programs in scope, their last attendance in each program and
# the program's service days after it (within the look-back window).
_ABSENT: Final[LiteralString] = """
WITH progs AS MATERIALIZED (
    SELECT program_id, name, coalesce(absence_days, %(n)s) AS n
    FROM programs
    WHERE facility_id = %(f)s AND active
      AND (%(programs)s::text[] IS NULL OR program_id = ANY(%(programs)s))
      AND (%(program)s::text IS NULL OR program_id = %(program)s)
),
days AS MATERIALIZED (  -- computed once, not once per member
    SELECT DISTINCT e.program_id, e.service_date
    FROM attendance_events AS e JOIN progs USING (program_id)
    WHERE e.facility_id = %(f)s AND e.outcome = 'accepted'
      AND e.service_date BETWEEN %(since)s AND %(today)s
),
enrolled AS MATERIALIZED (
    SELECT en.member_ref, en.program_id, en.enrolled_on, m.display_name, m.phone_enc
    FROM enrolments AS en
    JOIN members AS m USING (member_ref)
    JOIN progs USING (program_id)
    WHERE m.facility_id = %(f)s AND m.status = 'active' AND en.ended_on IS NULL
),
counted AS (
    SELECT en.member_ref, en.program_id, p.name, en.display_name, en.phone_enc, s.last_seen, p.n,
           (SELECT count(*) FROM days AS d WHERE d.program_id = en.program_id
              AND d.service_date > coalesce(s.last_seen, en.enrolled_on - 1))::integer AS absent
    FROM enrolled AS en JOIN progs AS p USING (program_id)
    -- one index look-up per member (attendance_events_member), whatever the table's size
    LEFT JOIN LATERAL (
        SELECT max(e.service_date) AS last_seen FROM attendance_events AS e
        WHERE e.member_ref = en.member_ref AND e.outcome = 'accepted'
          AND e.service_date <= %(today)s AND e.program_id = en.program_id
          AND e.facility_id = %(f)s
    ) AS s ON true
)
SELECT member_ref, program_id, name, display_name, phone_enc, last_seen, n, absent
FROM counted WHERE absent >= n
ORDER BY absent DESC, last_seen NULLS FIRST, member_ref, program_id
"""

# The calls to those members since they were last seen (a return starts a new count).
_CALLS: Final[LiteralString] = """
SELECT c.member_ref, c.program_id, c.call_id, c.called_at, c.outcome, c.note_enc, c.actor
FROM absence_calls AS c
JOIN unnest(%(refs)s::text[], %(programs)s::text[], %(since)s::date[])
    AS w(member_ref, program_id, after) USING (member_ref, program_id)
WHERE c.facility_id = %(f)s AND (c.called_at AT TIME ZONE %(tz)s)::date > w.after
ORDER BY c.called_at
"""


@dataclass(frozen=True, slots=True)
class Call:
    """One wellbeing call."""

    call_id: UUID
    called_at: datetime
    outcome: str
    note: str | None
    actor: str

    @property
    def label(self) -> str:
        """The outcome in Korean."""
        return OUTCOMES.get(self.outcome, self.outcome)


@dataclass(slots=True)
class Absent:
    """A member absent from one program: since when, for how many service days, the calls."""

    member_ref: str
    program_id: str
    program_name: str
    display_name: str
    phone: str | None  # masked (last four digits): staff may not read it in clear
    last_seen: date | None
    threshold: int
    days_absent: int
    calls: list[Call] = field(default_factory=list)
    flag_after: int = 3

    @property
    def unanswered(self) -> int:
        """Calls not answered since the member was last seen."""
        return sum(1 for c in self.calls if c.outcome == "not_reached")

    @property
    def flagged(self) -> bool:
        """Whether the manager should know (too many unanswered calls)."""
        return self.unanswered >= self.flag_after


def absent_members(
    conn: Conn,
    *,
    scope: Principal,
    facility_id: str,
    today: date,
    cipher: FieldCipher,
    timezone: str,
    default_days: int,
    lookback_days: int,
    flag_after: int,
    program_id: str | None = None,
) -> list[Absent]:
    """The absence list of a facility on `today`, most days absent first, with the calls."""
    scope.check_facility(facility_id)
    programs = list(scope.program_ids) if scope.program_ids is not None else None
    rows = conn.execute(
        _ABSENT,
        {
            "f": facility_id,
            "n": default_days,
            "programs": programs,
            "program": program_id,
            "since": today - timedelta(days=lookback_days),
            "today": today,
        },
    ).fetchall()
    found = [
        Absent(
            member_ref=r[0],
            program_id=r[1],
            program_name=r[2],
            display_name=r[3],
            phone=mask_phone(cipher.open_text(r[4], context=member_context("phone", r[0]))),
            last_seen=r[5],
            threshold=r[6],
            days_absent=r[7],
            flag_after=flag_after,
        )
        for r in rows
    ]
    if not found:
        return found
    by_key = {(a.member_ref, a.program_id): a for a in found}
    calls = conn.execute(
        _CALLS,
        {
            "f": facility_id,
            "tz": timezone,
            "refs": [a.member_ref for a in found],
            "programs": [a.program_id for a in found],
            "since": [a.last_seen or date.min for a in found],
        },
    ).fetchall()
    for ref, program, call_id, at, outcome, note_enc, actor in calls:
        note = cipher.open_text(note_enc, context=absence_note_context(call_id))
        by_key[(ref, program)].calls.append(Call(call_id, at, outcome, note, actor))
    return found


def record_call(
    conn: Conn,
    *,
    scope: Principal,
    call_id: UUID,
    member_ref: str,
    program_id: str,
    outcome: str,
    note: str | None,
    cipher: FieldCipher,
    at: datetime,
) -> bool | None:
    """Record a call; False when this call (its idempotency key) is already recorded.

    None when the member is not enrolled in that program of the caller's scope (the caller
    answers as for a member that does not exist).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    programs = list(scope.program_ids) if scope.program_ids is not None else None
    found = conn.execute(
        "SELECT m.facility_id FROM members m JOIN enrolments en USING (member_ref)"
        " WHERE m.member_ref = %(ref)s AND en.program_id = %(p)s AND m.status <> 'erased'"
        " AND (%(f)s::text IS NULL OR m.facility_id = %(f)s)"
        " AND (%(programs)s::text[] IS NULL OR en.program_id = ANY(%(programs)s))",
        {"ref": member_ref, "p": program_id, "f": scope.facility_id, "programs": programs},
    ).fetchone()
    if found is None:
        return None
    text = (note or "").strip() or None
    inserted = conn.execute(
        "INSERT INTO absence_calls (call_id, member_ref, program_id, facility_id, called_at,"
        " outcome, note_enc, actor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (call_id) DO NOTHING RETURNING call_id",
        (
            call_id,
            member_ref,
            program_id,
            found[0],
            at,
            outcome,
            cipher.seal_text(text, context=absence_note_context(call_id)),
            scope.actor,
        ),
    ).fetchone()
    return inserted is not None
