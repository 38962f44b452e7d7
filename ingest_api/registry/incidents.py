"""The contact list of an incident over a time window (food poisoning suspected at lunch, …).

Everyone recorded at a facility, or at one of its programs, between two instants: members with
their phone (to reach them), one-off visitors and residents met with only their codes, gender
and age band. Refused taps count too: the person was there. The list is personal data in bulk:
the center manager's, with a reason, audited, and handed out only encrypted (the callers do;
`ingest_api/core/downloads.py`). The same columns as the one-day list of the API
(`ingest_api/registry/lists.py: CONTACT_LIST_HEADER`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, LiteralString
from zoneinfo import ZoneInfo

from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, member_context

_ATTENDED: Final[LiteralString] = """
SELECT CASE WHEN m.member_ref IS NOT NULL THEN '회원' ELSE '일시이용' END,
       coalesce(e.member_ref, e.visitor->>'visitor_code'), m.display_name,
       coalesce(m.gender, e.visitor->>'gender'),
       coalesce(extract(year FROM m.birth_month)::text, e.visitor->>'age_band'),
       m.phone_enc, string_agg(DISTINCT coalesce(e.program_id, ''), ' '),
       min(e.occurred_at), max(e.occurred_at)
FROM attendance_events AS e LEFT JOIN members AS m ON m.member_ref = e.member_ref
WHERE e.facility_id = %(f)s AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
  -- the service days around the window: the (facility, day) index finds the rows
  AND e.service_date BETWEEN %(first_day)s AND %(last_day)s
  AND (%(p)s::text IS NULL OR e.program_id = %(p)s)
  AND coalesce(e.member_ref, e.visitor->>'visitor_code') IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 8, 2
"""
_MET: Final[LiteralString] = """
SELECT contact_code, gender, age_band, coalesce(program_id, ''), met_at
FROM community_contacts
WHERE facility_id = %(f)s AND met_at >= %(start)s AND met_at < %(end)s
  AND (%(p)s::text IS NULL OR program_id = %(p)s)
ORDER BY met_at, contact_code
"""


def contacts_in_window(
    conn: Conn,
    *,
    facility_id: str,
    start: datetime,
    end: datetime,
    cipher: FieldCipher,
    timezone: str,
    program_id: str | None = None,
) -> list[list[object]]:
    """Everyone recorded at the facility (or program) in [start, end), first seen first."""
    if end <= start:
        raise ValueError("the window ends before it starts")
    tz = ZoneInfo(timezone)
    params = {
        "f": facility_id,
        "start": start,
        "end": end,
        "p": program_id,
        # a day either side: a kiosk's service day is its local date, whatever its clock zone
        "first_day": start.astimezone(tz).date() - timedelta(days=1),
        "last_day": end.astimezone(tz).date() + timedelta(days=1),
    }

    def clock(at: datetime) -> str:
        """A time in the facility's zone (with the day: a window may span days)."""
        return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    out: list[list[object]] = []
    for kind, ref, name, gender, band, phone_enc, programs, first, last in conn.execute(
        _ATTENDED, params
    ).fetchall():
        phone = (
            cipher.open_text(phone_enc, context=member_context("phone", ref))
            if phone_enc is not None
            else None
        )
        out.append([kind, ref, name, gender, band, phone, programs, clock(first), clock(last)])
    for code, gender, band, program, met in conn.execute(_MET, params).fetchall():
        out.append(["지역주민", code, None, gender, band, None, program, clock(met), clock(met)])
    return out
