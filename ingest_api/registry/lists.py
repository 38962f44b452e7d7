"""Lists of people for downloads: a center's member list, and the contact list of an incident.

Both hold personal data: callers need a reason and hand the rows out only encrypted
(`ingest_api/core/downloads.py`), and the caller's scope decides the facility.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, member_context
from ingest_api.registry.identity import mask_phone

MEMBER_LIST_HEADER: Final = (
    "회원번호",
    "성명",
    "성별",
    "출생연도",
    "연락처",
    "행정동",
    "상태",
    "이용프로그램",
)
CONTACT_LIST_HEADER: Final = (
    "구분",
    "번호",
    "성명",
    "성별",
    "연령대/출생연도",
    "연락처",
    "프로그램",
    "처음 확인",
    "마지막 확인",
)


def member_list(
    conn: Conn, *, facility_id: str, cipher: FieldCipher, with_phone: bool
) -> list[list[object]]:
    """The center's current members (not erased), with phone in clear only if asked."""
    rows = conn.execute(
        "SELECT m.member_ref, m.display_name, m.gender, extract(year FROM m.birth_month)::int,"
        " m.phone_enc, m.neighbourhood, m.status,"
        " coalesce((SELECT string_agg(e.program_id, ' ' ORDER BY e.program_id) FROM enrolments e"
        "  WHERE e.member_ref = m.member_ref AND e.ended_on IS NULL), '')"
        " FROM members m WHERE m.facility_id = %s AND m.status <> 'erased'"
        " ORDER BY m.member_ref",
        (facility_id,),
    ).fetchall()
    out: list[list[object]] = []
    for ref, name, gender, year, phone_enc, hood, status, programs in rows:
        phone = cipher.open_text(phone_enc, context=member_context("phone", ref))
        out.append(
            [
                ref,
                name,
                gender,
                year,
                phone if with_phone else mask_phone(phone),
                hood,
                status,
                programs,
            ]
        )
    return out


def contact_list(
    conn: Conn,
    *,
    facility_id: str,
    day: date,
    cipher: FieldCipher,
    timezone: str,
    program_id: str | None = None,
) -> list[list[object]]:
    """Everyone recorded at a facility (or one of its programs) on a service day.

    Members with their phone (to reach them after an incident), one-off visitors and residents
    met with only their codes, gender and age band. Refused taps count too: the person was
    there.
    """
    rows = conn.execute(
        "SELECT CASE WHEN m.member_ref IS NOT NULL THEN '회원' ELSE '일시이용' END,"
        " coalesce(e.member_ref, e.visitor->>'visitor_code'), m.display_name,"
        " coalesce(m.gender, e.visitor->>'gender'),"
        " coalesce(extract(year FROM m.birth_month)::text, e.visitor->>'age_band'),"
        " m.phone_enc, string_agg(DISTINCT coalesce(e.program_id, ''), ' '),"
        " min(e.occurred_at), max(e.occurred_at)"
        " FROM attendance_events e LEFT JOIN members m ON m.member_ref = e.member_ref"
        " WHERE e.facility_id = %(f)s AND e.service_date = %(d)s"
        " AND (%(p)s::text IS NULL OR e.program_id = %(p)s)"
        " AND coalesce(e.member_ref, e.visitor->>'visitor_code') IS NOT NULL"
        " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 8",
        {"f": facility_id, "d": day, "p": program_id},
    ).fetchall()
    tz = ZoneInfo(timezone)

    def clock(at: datetime) -> str:
        """A time of that day, in the facility's time."""
        return at.astimezone(tz).strftime("%H:%M:%S")

    out: list[list[object]] = []
    for kind, ref, name, gender, band, phone_enc, programs, first, last in rows:
        phone = (
            cipher.open_text(phone_enc, context=member_context("phone", ref))
            if phone_enc is not None
            else None
        )
        out.append([kind, ref, name, gender, band, phone, programs, clock(first), clock(last)])
    contacts = conn.execute(
        "SELECT contact_code, gender, age_band, coalesce(program_id, ''), met_at"
        " FROM community_contacts WHERE facility_id = %(f)s AND service_date = %(d)s"
        " AND (%(p)s::text IS NULL OR program_id = %(p)s) ORDER BY met_at",
        {"f": facility_id, "d": day, "p": program_id},
    ).fetchall()
    for code, gender, band, program, met in contacts:
        out.append(["지역주민", code, None, gender, band, None, program, clock(met), clock(met)])
    return out
