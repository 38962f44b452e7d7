"""A member's rights: everything held about them (an export), and erasure.

Erasure removes the personal data and the credentials and keeps the figures: the member's
attendances and enrolments move to a random pseudonym that nothing links back to, holding only
what the figures group by (gender, birth month, neighbourhood, fee types). Correction is the
ordinary update (PUT /api/v1/registry/members/{ref}); withdrawing the consent to provision to
the city (`transfer`) takes the member out of the city's duplicate-service view.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, member_context
from ingest_api.registry import face


def _plain(value: Any) -> Any:
    """JSON-ready values (dates as ISO text)."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def member_record(conn: Conn, *, member_ref: str, cipher: FieldCipher) -> dict[str, Any]:
    """Everything the registry holds about one member, in clear, for the member themselves."""
    with conn.cursor(row_factory=dict_row) as cur:
        member = cur.execute(
            "SELECT member_ref, facility_id, display_name, gender, recipient, disability,"
            " neighbourhood, status, registered_on, updated_at, phone_enc, birth_date_enc,"
            " main_needs_enc FROM members WHERE member_ref = %s",
            (member_ref,),
        ).fetchone()
        if member is None:
            raise LookupError(member_ref)
        consents = cur.execute(
            "SELECT kind, granted_on, withdrawn_on FROM member_consents WHERE member_ref = %s"
            " ORDER BY kind",
            (member_ref,),
        ).fetchall()
        credentials = cur.execute(
            "SELECT kind, issued_at, revoked_at FROM member_credentials WHERE member_ref = %s"
            " ORDER BY issued_at",
            (member_ref,),
        ).fetchall()
        enrolments = cur.execute(
            "SELECT e.program_id, p.name AS program, e.fee_type, e.enrolled_on, e.ended_on"
            " FROM enrolments e JOIN programs p USING (program_id) WHERE e.member_ref = %s"
            " ORDER BY e.program_id",
            (member_ref,),
        ).fetchall()
        attendances = cur.execute(
            "SELECT service_date, occurred_at, program_id, method, outcome FROM"
            " attendance_events WHERE member_ref = %s ORDER BY occurred_at",
            (member_ref,),
        ).fetchall()
        # Who looked at their data and why (the kinds of access; staff are named by role
        # in the center, not by account, in what the member receives).
        accesses = cur.execute(
            "SELECT at, action, reason FROM audit_log WHERE subject = %s"
            " OR starts_with(subject, %s) ORDER BY audit_id",
            (f"member:{member_ref}", f"member:{member_ref}:"),
        ).fetchall()
    phone_enc = member.pop("phone_enc")
    birth_enc = member.pop("birth_date_enc")
    needs_enc = member.pop("main_needs_enc")
    record = {k: _plain(v) for k, v in member.items()}
    record["phone"] = cipher.open_text(phone_enc, context=member_context("phone", member_ref))
    birth = cipher.open_date(birth_enc, context=member_context("birth_date", member_ref))
    record["birth_date"] = _plain(birth)
    record["main_needs"] = cipher.open_list(
        needs_enc, context=member_context("main_needs", member_ref)
    )
    held = face.status(conn, member_ref=member_ref)
    return {
        "member": record,
        "consents": [{k: _plain(v) for k, v in c.items()} for c in consents],
        # Face match: the consent record and whether a template is held (it is sealed and
        # opens only on the facility's kiosks, so its bytes tell the member nothing).
        "face": {
            "consent": {k: _plain(v) for k, v in (held.consent or {}).items()} or None,
            "template_held": held.enrolled,
            "enrolled_at": _plain(held.enrolled_at),
            "photos_used": held.photos,
        },
        "credentials": [{k: _plain(v) for k, v in c.items()} for c in credentials],
        "enrolments": [{k: _plain(v) for k, v in e.items()} for e in enrolments],
        "attendances": [{k: _plain(v) for k, v in a.items()} for a in attendances],
        "accesses": [{k: _plain(v) for k, v in a.items()} for a in accesses],
    }


def erase_member(conn: Conn, *, member_ref: str) -> dict[str, int]:
    """Erase a member's personal data; their attendances count on under a random pseudonym.

    Returns how many attendances and enrolments moved. The pseudonym is returned to no one and
    written nowhere else, so nothing links it back to the member.
    """
    row = conn.execute(
        "SELECT facility_id, person_id, gender, birth_month, neighbourhood, registered_on"
        " FROM members WHERE member_ref = %s AND status <> 'erased'",
        (member_ref,),
    ).fetchone()
    if row is None:
        raise LookupError(member_ref)
    facility_id, person_id, gender, birth_month, neighbourhood, registered_on = row
    pseudonym = f"X-{secrets.token_hex(12)}"
    new_person = f"P-{secrets.token_hex(10)}"
    conn.execute("INSERT INTO persons (person_id) VALUES (%s)", (new_person,))
    conn.execute(
        "INSERT INTO members (member_ref, facility_id, person_id, display_name, gender,"
        " birth_month, neighbourhood, status, registered_on)"
        " VALUES (%s, %s, %s, '(삭제됨)', %s, %s, %s, 'erased', %s)",
        (pseudonym, facility_id, new_person, gender, birth_month, neighbourhood, registered_on),
    )
    enrolments = conn.execute(
        "UPDATE enrolments SET member_ref = %s WHERE member_ref = %s", (pseudonym, member_ref)
    ).rowcount
    attendances = conn.execute(
        "UPDATE attendance_events SET member_ref = %s WHERE member_ref = %s",
        (pseudonym, member_ref),
    ).rowcount
    # Services staff recorded follow the attendances; their notes are personal: they go.
    conn.execute(
        "UPDATE service_records SET member_ref = %s, person_ref = %s, note_enc = NULL"
        " WHERE member_ref = %s",
        (pseudonym, pseudonym, member_ref),
    )
    # Consents and card credentials go with the row (ON DELETE CASCADE).
    conn.execute("DELETE FROM members WHERE member_ref = %s", (member_ref,))
    conn.execute(
        "DELETE FROM persons p WHERE p.person_id = %s"
        " AND NOT EXISTS (SELECT 1 FROM members m WHERE m.person_id = p.person_id)",
        (person_id,),
    )
    return {"attendances": attendances, "enrolments": enrolments}
