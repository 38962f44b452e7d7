"""Services that never pass a kiosk, and the field tablets' visitors and residents.

A service staff record (counselling, a home visit, a phone check, a meal delivery, a case or
network meeting) is stored twice over in one transaction: its details in `service_records`,
and one accepted attendance event (method `staff`) of its program. The figures count only
attendance events (and community contacts): so a recorded service is counted by its program's
counting rule exactly like a kiosk's tap, by the one definition in ingest_api/figures.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from broker.ids import uuid7
from broker.vocabulary import Method, Outcome
from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, contact_context, service_context
from ingest_api.registry.models import VisitorIn
from ingest_api.registry.store import RegistryError

# The device id of events staff record on the web pages (no kiosk has it: ids of provisioned
# devices never contain ':').
STAFF_DEVICE: Final = "web:staff"
# Visitor codes the center issues are numbered from here on each day, so they never meet the
# codes a kiosk issues (numbered from 0001 on its own counter).
CENTER_VISITOR_FIRST: Final = 5001


class ServiceKind(StrEnum):
    """The services staff record by hand."""

    COUNSELLING = "counselling"
    HOME_VISIT = "home_visit"
    PHONE_CHECK = "phone_check"
    MEAL_DELIVERY = "meal_delivery"
    CASE_MEETING = "case_meeting"
    NETWORK_MEETING = "network_meeting"


SERVICE_LABELS: Final[dict[ServiceKind, str]] = {
    ServiceKind.COUNSELLING: "상담",
    ServiceKind.HOME_VISIT: "가정방문",
    ServiceKind.PHONE_CHECK: "안부전화",
    ServiceKind.MEAL_DELIVERY: "도시락 배달",
    ServiceKind.CASE_MEETING: "사례회의",
    ServiceKind.NETWORK_MEETING: "네트워크 회의",
}


@dataclass(frozen=True, slots=True)
class ServiceIn:
    """One service as staff record it: for a member, or for a group (a meeting)."""

    facility_id: str
    program_id: str
    kind: ServiceKind
    occurred_at: datetime
    member_ref: str | None
    group_name: str | None
    note: str


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """A recorded service as the list shows it (the note is not listed)."""

    service_id: int
    kind: str
    program_id: str
    member_ref: str | None
    display_name: str | None
    group_name: str | None
    occurred_at: datetime
    recorded_by: str


def group_ref(facility_id: str, group_name: str) -> str:
    """The stable reference a group's meetings count under (the same name, the same group)."""
    digest = hashlib.sha256(f"{facility_id}\x00{group_name.strip()}".encode()).hexdigest()
    return f"G-{facility_id}-{digest[:16]}"


def _staff_event(
    conn: Conn,
    *,
    facility_id: str,
    program_id: str,
    person_ref: str,
    at: datetime,
    timezone: str,
    flag: str,
) -> tuple[uuid.UUID, date]:
    """One accepted attendance event recorded by staff (what the figures count); its id and
    service day."""
    day = at.astimezone(ZoneInfo(timezone)).date()
    event_id = uuid7(at)
    conn.execute(
        "INSERT INTO attendance_events (event_id, occurred_at, facility_id, device_id,"
        " service_date, program_id, member_ref, method, outcome, flags)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            event_id,
            at,
            facility_id,
            STAFF_DEVICE,
            day,
            program_id,
            person_ref,
            Method.STAFF.value,
            Outcome.ACCEPTED.value,
            [flag],
        ),
    )
    return event_id, day


def record_service(
    conn: Conn, *, service: ServiceIn, actor: str, cipher: FieldCipher, timezone: str
) -> int:
    """Record a service and its attendance event in the caller's transaction; its id."""
    if (service.member_ref is None) == (service.group_name is None):
        raise RegistryError("a service is for one member or one group")
    row = conn.execute(
        "SELECT facility_id FROM programs WHERE program_id = %s", (service.program_id,)
    ).fetchone()
    if row is None or row[0] != service.facility_id:
        raise RegistryError(f"unknown program {service.program_id!r}")
    person_ref = service.member_ref or group_ref(service.facility_id, str(service.group_name))
    at = service.occurred_at
    event_id, day = _staff_event(
        conn,
        facility_id=service.facility_id,
        program_id=service.program_id,
        person_ref=person_ref,
        at=at,
        timezone=timezone,
        flag=f"service:{service.kind.value}",
    )
    note = cipher.encrypt(service.note, context=service_context(event_id)) if service.note else None
    found = conn.execute(
        "INSERT INTO service_records (event_id, facility_id, program_id, kind, member_ref,"
        " group_name, person_ref, occurred_at, service_date, note_enc, recorded_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING service_id",
        (
            event_id,
            service.facility_id,
            service.program_id,
            service.kind.value,
            service.member_ref,
            service.group_name,
            person_ref,
            at,
            day,
            note,
            actor,
        ),
    ).fetchone()
    assert found is not None
    return int(found[0])


def recent_services(
    conn: Conn, *, facility_id: str, since: date, limit: int = 50
) -> list[ServiceRow]:
    """The facility's services recorded by staff since a day, newest first."""
    return [
        ServiceRow(*r)
        for r in conn.execute(
            "SELECT s.service_id, s.kind, s.program_id, s.member_ref, m.display_name,"
            " s.group_name, s.occurred_at, s.recorded_by FROM service_records s"
            " LEFT JOIN members m ON m.member_ref = s.member_ref"
            " WHERE s.facility_id = %s AND s.service_date >= %s"
            " ORDER BY s.occurred_at DESC, s.service_id DESC LIMIT %s",
            (facility_id, since, limit),
        )
    ]


def service_note(conn: Conn, *, service_id: int, cipher: FieldCipher) -> str | None:
    """A recorded service's note in clear (callers audit the view)."""
    row = conn.execute(
        "SELECT event_id, note_enc FROM service_records WHERE service_id = %s", (service_id,)
    ).fetchone()
    if row is None or row[1] is None:
        return None
    return cipher.open_text(row[1], context=service_context(row[0]))


# -- visitors and residents ----------------------------------------------------------------


def issue_visitor(
    conn: Conn,
    *,
    facility_id: str,
    day: date,
    gender: str,
    age_band: str,
    neighbourhood: str,
    purpose: str,
) -> str:
    """Register a one-off visitor under a new personal ID code of the day; the code."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('visitor:' || %s || %s))",
        (facility_id, day.isoformat()),
    )
    prefix = f"V-{facility_id}-{day:%Y%m%d}-"
    row = conn.execute(
        "SELECT max(substring(visitor_code FROM '([0-9]{4})$')::integer) FROM visitors"
        " WHERE visitor_code LIKE %s AND substring(visitor_code FROM '([0-9]{4})$')::integer"
        " >= %s",
        (prefix + "%", CENTER_VISITOR_FIRST),
    ).fetchone()
    number = max(CENTER_VISITOR_FIRST, (int(row[0]) + 1) if row and row[0] else 0)
    if number > 9999:
        raise RegistryError("오늘 발급할 수 있는 방문자 코드를 모두 썼습니다")
    code = f"{prefix}{number:04d}"
    visitor = VisitorIn(
        visitor_code=code,
        facility_id=facility_id,
        gender=gender,
        age_band=age_band,
        neighbourhood=neighbourhood,
        purpose=purpose,
    )
    conn.execute(
        "INSERT INTO visitors (visitor_code, facility_id, gender, age_band, neighbourhood, purpose)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (
            visitor.visitor_code,
            visitor.facility_id,
            visitor.gender,
            visitor.age_band,
            visitor.neighbourhood,
            visitor.purpose,
        ),
    )
    return code


@dataclass(frozen=True, slots=True)
class Visitor:
    """A registered visitor (no name, no contact: only what the figures need)."""

    visitor_code: str
    facility_id: str
    gender: str
    age_band: str
    neighbourhood: str
    purpose: str
    registered_at: datetime


def find_visitor(conn: Conn, *, visitor_code: str, facility_id: str | None) -> Visitor | None:
    """A visitor of the facility (None: any) by their code."""
    row = conn.execute(
        "SELECT visitor_code, facility_id, gender, age_band, neighbourhood, purpose,"
        " registered_at FROM visitors WHERE visitor_code = %s"
        " AND (%s::text IS NULL OR facility_id = %s)",
        (visitor_code, facility_id, facility_id),
    ).fetchone()
    return Visitor(*row) if row else None


def record_visit(
    conn: Conn, *, visitor: Visitor, program_id: str, at: datetime, timezone: str
) -> bool:
    """Record a visitor's visit to a program (counted like a kiosk's visitor registration);
    False when the visit of that day to that program is already recorded."""
    row = conn.execute(
        "SELECT facility_id FROM programs WHERE program_id = %s", (program_id,)
    ).fetchone()
    if row is None or row[0] != visitor.facility_id:
        raise RegistryError(f"unknown program {program_id!r}")
    day = at.astimezone(ZoneInfo(timezone)).date()
    seen = conn.execute(
        "SELECT 1 FROM attendance_events WHERE member_ref = %s AND program_id = %s"
        " AND service_date = %s AND outcome = 'accepted'",
        (visitor.visitor_code, program_id, day),
    ).fetchone()
    if seen is not None:
        return False
    _staff_event(
        conn,
        facility_id=visitor.facility_id,
        program_id=program_id,
        person_ref=visitor.visitor_code,
        at=at,
        timezone=timezone,
        flag="visit",
    )
    return True


def visits(conn: Conn, *, visitor_code: str) -> list[tuple[date, str]]:
    """A visitor's visits: (day, program), newest first."""
    return [
        (r[0], str(r[1]))
        for r in conn.execute(
            "SELECT service_date, program_id FROM attendance_events WHERE member_ref = %s"
            " AND outcome = 'accepted' AND program_id IS NOT NULL"
            " ORDER BY service_date DESC, program_id LIMIT 50",
            (visitor_code,),
        )
    ]


@dataclass(frozen=True, slots=True)
class Meeting:
    """One meeting with a resident during community organizing (needs not shown in lists)."""

    contact_id: int
    contact_code: str
    gender: str
    age_band: str
    neighbourhood: str
    place: str
    met_at: datetime
    program_id: str | None


def next_contact_code(conn: Conn, *, facility_id: str, day: date) -> str:
    """A new resident's code: `C-<facility>-<yyyymmdd>-<n>`, the next free one of the day."""
    prefix = f"C-{facility_id}-{day:%Y%m%d}-"
    row = conn.execute(
        "SELECT count(DISTINCT contact_code) FROM community_contacts WHERE contact_code LIKE %s",
        (prefix + "%",),
    ).fetchone()
    number = int(row[0]) if row else 0
    while True:
        number += 1
        code = f"{prefix}{number:03d}"
        taken = conn.execute(
            "SELECT 1 FROM community_contacts WHERE contact_code = %s", (code,)
        ).fetchone()
        if taken is None:
            return code


def meeting_at(conn: Conn, *, contact_code: str, met_at: datetime) -> bool:
    """Whether a meeting with this resident at this moment is already recorded."""
    row = conn.execute(
        "SELECT 1 FROM community_contacts WHERE contact_code = %s AND met_at = %s",
        (contact_code, met_at),
    ).fetchone()
    return row is not None


def meetings(conn: Conn, *, facility_id: str, contact_code: str | None = None) -> list[Meeting]:
    """Meetings of a facility (of one resident, or the latest 30), newest first."""
    return [
        Meeting(*r)
        for r in conn.execute(
            "SELECT contact_id, contact_code, gender, age_band, neighbourhood, place, met_at,"
            " program_id FROM community_contacts WHERE facility_id = %s"
            " AND (%s::text IS NULL OR contact_code = %s) ORDER BY met_at DESC, contact_id DESC"
            " LIMIT 30",
            (facility_id, contact_code, contact_code),
        )
    ]


def meeting_needs(conn: Conn, *, contact_id: int, cipher: FieldCipher) -> str | None:
    """A meeting's needs in clear (callers audit the view)."""
    row = conn.execute(
        "SELECT contact_code, needs_enc FROM community_contacts WHERE contact_id = %s",
        (contact_id,),
    ).fetchone()
    if row is None or row[1] is None:
        return None
    return cipher.open_text(row[1], context=contact_context(str(row[0])))
