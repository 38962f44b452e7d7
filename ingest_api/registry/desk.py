"""Data functions of the staff desk: cards tapped on the desk reader, enrolments one at a time,
a member's details corrected without touching their cards, what a status change does to the
kiosks, and forms sent twice.

A card tapped at the desk is hashed with the facility's key exactly as the kiosks hash it
(registry/keys.py, broker/hashing.py); the clear UID is kept only sealed, never in clear.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from psycopg import sql

from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, member_context, phone_tail
from ingest_api.core.security import Principal
from ingest_api.registry import keys
from ingest_api.registry.const import INACTIVE_KEPT_DAYS
from ingest_api.registry.identity import identity_hash, person_id_for
from ingest_api.registry.store import _VISIBLE, RegistryError, _scope, _seal

CardIssue = Literal["issued", "already", "restored"]


@dataclass(frozen=True, slots=True)
class Credential:
    """A card or NFC identifier as staff see it: never the UID, only when and which kind."""

    ref: str  # the first 12 hex digits of its hash: enough to name it on the page
    kind: str
    issued_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KioskEffect:
    """What the kiosks will do with a member: which serve their programs, and until when."""

    devices: list[str]
    status: str
    leaves_roster_on: date | None  # None: stays (an active member)
    kept_days: int


# -- forms sent twice ----------------------------------------------------------------------


def claim_form(conn: Conn, *, form_key: uuid.UUID, actor: str, kind: str) -> str | None:
    """Claim a form's key for this request; the stored result when it was already recorded.

    The claim is part of the request's transaction: a second send of the same form waits on
    the key until the first commits, then finds its result (one record, never two).
    """
    row = conn.execute(
        "INSERT INTO form_submissions (form_key, actor, kind) VALUES (%s, %s, %s)"
        " ON CONFLICT (form_key) DO NOTHING RETURNING form_key",
        (form_key, actor, kind),
    ).fetchone()
    if row is not None:
        return None
    done = conn.execute(
        "SELECT result FROM form_submissions WHERE form_key = %s AND actor = %s",
        (form_key, actor),
    ).fetchone()
    if done is None:
        raise RegistryError("이 양식은 다른 사람이 보낸 것입니다. 페이지를 새로 여세요.")
    # None: claimed by a send that recorded nothing (refused after the claim): go on.
    return None if done[0] is None else str(done[0])


def finish_form(conn: Conn, *, form_key: uuid.UUID, result: str) -> None:
    """Remember where a recorded form led (what a second send answers)."""
    conn.execute("UPDATE form_submissions SET result = %s WHERE form_key = %s", (result, form_key))


# -- members -------------------------------------------------------------------------------


def next_member_ref(conn: Conn, *, facility_id: str) -> str:
    """A free member number of the facility: `<facility>-<n>` after the highest in use."""
    row = conn.execute(
        "SELECT coalesce(max(substring(member_ref FROM '-([0-9]+)$')::integer), 0)"
        " FROM members WHERE facility_id = %s AND member_ref ~ ('^' || %s || '-[0-9]+$')",
        (facility_id, facility_id),
    ).fetchone()
    number = int(row[0]) if row else 0
    while True:
        number += 1
        ref = f"{facility_id}-{number:05d}"
        if conn.execute("SELECT 1 FROM members WHERE member_ref = %s", (ref,)).fetchone() is None:
            return ref


def update_member(
    conn: Conn,
    *,
    member_ref: str,
    fields: dict[str, Any],
    consents: list[str],
    key: bytes,
    cipher: FieldCipher,
) -> bool:
    """Correct a member's details and consents; cards and enrolments stay as they are.

    `fields` holds display_name, gender, recipient, disability, neighbourhood, main_needs and,
    only when staff typed new ones, phone and birth_date (absent: the stored value stays).
    Returns whether anything changed.
    """
    stored = conn.execute(
        "SELECT phone_enc, birth_date_enc, main_needs_enc, display_name FROM members"
        " WHERE member_ref = %s FOR UPDATE",
        (member_ref,),
    ).fetchone()
    if stored is None:
        raise RegistryError(f"no member {member_ref!r}")
    values: dict[str, Any] = {
        "display_name": fields["display_name"],
        "gender": fields.get("gender"),
        "recipient": bool(fields.get("recipient")),
        "disability": bool(fields.get("disability")),
        "neighbourhood": fields.get("neighbourhood"),
        "main_needs_enc": _seal(
            cipher,
            stored=stored[2],
            value=list(fields.get("main_needs") or []),
            context=member_context("main_needs", member_ref),
        ),
    }
    if fields.get("phone"):
        values["phone_enc"] = _seal(
            cipher,
            stored=stored[0],
            value=fields["phone"],
            context=member_context("phone", member_ref),
        )
        tail = phone_tail(fields["phone"])
        values["phone_tail_hash"] = cipher.lookup_hash(tail, purpose="phone_tail") if tail else None
    birth: date | None = fields.get("birth_date")
    if birth is None and stored[1] is not None and fields["display_name"] != stored[3]:
        # The city-wide identity is name + birth date: a new name needs the stored date.
        birth = cipher.open_date(stored[1], context=member_context("birth_date", member_ref))
    if birth is not None:
        values["birth_month"] = birth.replace(day=1)
        values["birth_date_enc"] = _seal(
            cipher,
            stored=stored[1],
            value=birth,
            context=member_context("birth_date", member_ref),
        )
        identity = identity_hash(name=fields["display_name"], birth_date=birth, key=key)
        person_id = person_id_for(member_ref=member_ref, identity=identity, key=key)
        conn.execute(
            "INSERT INTO persons (person_id, identity_hash) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (person_id, identity),
        )
        values["person_id"] = person_id
    cols = list(values)
    query = sql.SQL(
        "UPDATE members SET {sets}, updated_at = now() WHERE member_ref = %s"
        " AND ({stored}) IS DISTINCT FROM ({new})"
    ).format(
        sets=sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols),
        stored=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        new=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    changed = conn.execute(query, [*values.values(), member_ref, *values.values()]).rowcount > 0
    return set_consents(conn, member_ref=member_ref, kinds=consents) or changed


def set_consents(conn: Conn, *, member_ref: str, kinds: list[str]) -> bool:
    """Consents in force are exactly `kinds`: new ones are given today, ones no longer ticked
    are withdrawn today (kept with both dates: when a consent held is part of the record)."""
    withdrawn = conn.execute(
        "UPDATE member_consents SET withdrawn_on = CURRENT_DATE WHERE member_ref = %s"
        " AND withdrawn_on IS NULL AND NOT (kind = ANY(%s))",
        (member_ref, kinds),
    ).rowcount
    given = conn.execute(
        "INSERT INTO member_consents (member_ref, kind, granted_on)"
        " SELECT %s, k, CURRENT_DATE FROM unnest(%s::text[]) AS k"
        " ON CONFLICT (member_ref, kind) DO UPDATE SET granted_on = CURRENT_DATE,"
        " withdrawn_on = NULL WHERE member_consents.withdrawn_on IS NOT NULL",
        (member_ref, kinds),
    ).rowcount
    return bool(withdrawn or given)


def enrol(conn: Conn, *, member_ref: str, program_id: str, fee_type: str | None) -> bool:
    """Enrol a member in one program (again, when the enrolment had ended)."""
    cur = conn.execute(
        "INSERT INTO enrolments (member_ref, program_id, fee_type) VALUES (%s, %s, %s)"
        " ON CONFLICT (member_ref, program_id) DO UPDATE SET fee_type = EXCLUDED.fee_type,"
        " ended_on = NULL, enrolled_on = CASE WHEN enrolments.ended_on IS NULL"
        " THEN enrolments.enrolled_on ELSE CURRENT_DATE END"
        " WHERE (enrolments.fee_type, enrolments.ended_on)"
        " IS DISTINCT FROM (EXCLUDED.fee_type, NULL::date)",
        (member_ref, program_id, fee_type),
    )
    return cur.rowcount > 0


def end_enrolment(conn: Conn, *, member_ref: str, program_id: str) -> bool:
    """End a member's enrolment in one program today (the history stays)."""
    cur = conn.execute(
        "UPDATE enrolments SET ended_on = CURRENT_DATE WHERE member_ref = %s AND program_id = %s"
        " AND ended_on IS NULL",
        (member_ref, program_id),
    )
    return cur.rowcount > 0


# -- cards at the desk reader --------------------------------------------------------------


def _digests(conn: Conn, *, facility_id: str, uid: str, key: bytes) -> dict[int, str]:
    """The hashes a card has under the facility's key versions in use (as kiosks hash it)."""
    versions = keys.ensure_versions(conn, facility_id=facility_id)
    return keys.hashes_of(key, facility_id=facility_id, versions=versions, uid=uid)


def find_by_card(
    conn: Conn, *, uid: str, facility_id: str, key: bytes, scope: Principal
) -> str | None:
    """The member (within the caller's scope) whose valid card this is, or None."""
    digests = list(_digests(conn, facility_id=facility_id, uid=uid, key=key).values())
    query = sql.SQL(
        "SELECT m.member_ref FROM member_credentials c JOIN members m USING (member_ref)"
        " WHERE c.credential_hash = ANY(%(digests)s) AND c.revoked_at IS NULL AND {}"
    ).format(_VISIBLE)
    row = conn.execute(query, {"digests": digests, **_scope(scope)}).fetchone()
    return str(row[0]) if row else None


def issue_card(
    conn: Conn, *, member_ref: str, facility_id: str, uid: str, key: bytes, kind: str = "card"
) -> CardIssue:
    """Give a member the card tapped on the desk reader (refused when it is someone else's)."""
    digests = _digests(conn, facility_id=facility_id, uid=uid, key=key)
    outcome: CardIssue = "already"
    for version, digest in digests.items():
        row = conn.execute(
            "SELECT member_ref, revoked_at IS NOT NULL FROM member_credentials"
            " WHERE credential_hash = %s",
            (digest,),
        ).fetchone()
        if row is not None and row[0] != member_ref:
            if not row[1]:
                raise RegistryError("이 카드는 다른 회원에게 발급되어 있습니다")
            # A revoked card of someone else is free again: it moves to this member.
            conn.execute("DELETE FROM member_credentials WHERE credential_hash = %s", (digest,))
            row = None
        sealed = keys.seal_uid(key, uid=uid, member_ref=member_ref)
        if row is None:
            conn.execute(
                "INSERT INTO member_credentials (credential_hash, member_ref, kind, key_version,"
                " uid_sealed) VALUES (%s, %s, %s, %s, %s)",
                (digest, member_ref, kind, version, sealed),
            )
            outcome = "issued"
        elif row[1]:
            conn.execute(
                "UPDATE member_credentials SET revoked_at = NULL, issued_at = now(),"
                " uid_sealed = coalesce(uid_sealed, %s) WHERE credential_hash = %s",
                (sealed, digest),
            )
            outcome = "restored" if outcome == "already" else outcome
    return outcome


def revoke_card(conn: Conn, *, member_ref: str, facility_id: str, uid: str, key: bytes) -> int:
    """Revoke the member's card tapped on the desk reader; how many hashes were revoked."""
    digests = list(_digests(conn, facility_id=facility_id, uid=uid, key=key).values())
    return conn.execute(
        "UPDATE member_credentials SET revoked_at = now() WHERE member_ref = %s"
        " AND credential_hash = ANY(%s) AND revoked_at IS NULL",
        (member_ref, digests),
    ).rowcount


def revoke_credential(conn: Conn, *, member_ref: str, ref: str) -> int:
    """Revoke a member's card by the reference the page shows (a lost card cannot be tapped).

    Every hash of the same card (one per key version) shares its sealed UID and goes with it.
    """
    if len(ref) < 12 or not all(c in "0123456789abcdef" for c in ref):
        return 0
    return conn.execute(
        "UPDATE member_credentials c SET revoked_at = now() WHERE c.member_ref = %(m)s"
        " AND c.revoked_at IS NULL AND (c.credential_hash LIKE %(p)s OR c.issued_at = ("
        " SELECT issued_at FROM member_credentials WHERE member_ref = %(m)s"
        " AND credential_hash LIKE %(p)s))",
        {"m": member_ref, "p": ref + "%"},
    ).rowcount


def credentials(conn: Conn, *, member_ref: str) -> list[Credential]:
    """A member's cards (one line per card and key version), newest first."""
    return [
        Credential(str(h)[:12], str(kind), issued, revoked)
        for h, kind, issued, revoked in conn.execute(
            "SELECT credential_hash, kind, issued_at, revoked_at FROM member_credentials"
            " WHERE member_ref = %s ORDER BY revoked_at IS NOT NULL, issued_at DESC,"
            " credential_hash",
            (member_ref,),
        )
    ]


def kiosk_effect(conn: Conn, *, member_ref: str) -> KioskEffect:
    """Which kiosks serve the member's programs, and when the member leaves their rosters.

    Rosters are rebuilt within a minute of a change (registry/sync.py); an inactive member
    stays on them INACTIVE_KEPT_DAYS days after the change (the kiosk says "see staff"), then
    leaves (registry/rosters.py: roster_members).
    """
    row = conn.execute(
        "SELECT status, updated_at FROM members WHERE member_ref = %s", (member_ref,)
    ).fetchone()
    if row is None:
        raise RegistryError(f"no member {member_ref!r}")
    devices = [
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT dp.device_id FROM device_programs dp JOIN enrolments e"
            " ON e.program_id = dp.program_id AND e.ended_on IS NULL"
            " JOIN members m ON m.member_ref = e.member_ref AND m.facility_id = dp.facility_id"
            " WHERE e.member_ref = %s ORDER BY 1",
            (member_ref,),
        )
    ]
    status, updated_at = str(row[0]), row[1]
    leaves = None
    if status != "active":
        leaves = updated_at.date() + timedelta(days=INACTIVE_KEPT_DAYS)
    return KioskEffect(devices, status, leaves, INACTIVE_KEPT_DAYS)
