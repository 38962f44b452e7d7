"""Reads and writes of the registry (keyword-only functions over a psycopg connection).

Reads of members take the caller's scope (`Principal`: facility, programs) and filter by it in
SQL, so another center's member is not found; phone, birth date and needs are stored only
encrypted (`FieldCipher`), and found by keyed hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from psycopg import sql
from psycopg.rows import dict_row

from broker.const import DEFAULT_TIMEZONE
from ingest_api.core.db import Conn
from ingest_api.core.fieldcrypto import FieldCipher, contact_context, member_context, phone_tail
from ingest_api.core.security import Principal
from ingest_api.registry import keys
from ingest_api.registry.identity import identity_hash, mask_phone, person_id_for
from ingest_api.registry.models import (
    Consent,
    ContactIn,
    CountingRule,
    Facility,
    Member,
    MemberIn,
    MemberSensitive,
    NodeTarget,
    Program,
    ProgramWithTargets,
    Targets,
    VisitorIn,
)

Change = Literal["inserted", "updated", "unchanged"]

_PROGRAM_COLS = (
    "facility_id",
    "name",
    "function",
    "business_area",
    "unit_business",
    "purpose",
    "target_group",
    "cycle",
    "place",
    "capacity",
    "fee_type",
    "rule_id",
    "active",
    "kind",
    "team",
    "manager",
    "indicator",
    "operating_form",
    "absence_days",  # issue 13: the absence list's threshold (migration 0075)
)
_TARGET_COLS = (
    "unique_persons",
    "person_visits",
    "cases",
    "unique_persons_male",
    "unique_persons_female",
)
# Which members a principal sees: its facility (None: all) and, for staff with assigned
# programs, members enrolled now in one of them. Parameters: %(scope_facility)s, %(scope_programs)s.
_VISIBLE = sql.SQL("""
    (%(scope_facility)s::text IS NULL OR m.facility_id = %(scope_facility)s)
    AND (%(scope_programs)s::text[] IS NULL OR EXISTS (
        SELECT 1 FROM enrolments e WHERE e.member_ref = m.member_ref AND e.ended_on IS NULL
        AND e.program_id = ANY(%(scope_programs)s)))
    AND m.status <> 'erased'
""")


class RegistryError(ValueError):
    """A write the registry refuses (unknown facility, credential of another member, …)."""


def _upsert(conn: Conn, *, table: str, key: str, values: dict[str, Any]) -> Change:
    """Insert or update one row, touching nothing when every value is already stored."""
    cols = [sql.Identifier(c) for c in values]
    data = [sql.Identifier(c) for c in values if c != key]
    name = sql.Identifier(table)
    touch = sql.SQL(", updated_at = now()" if table in ("programs", "members") else "")
    query = sql.SQL(
        "INSERT INTO {table} ({cols}) VALUES ({values}) "
        "ON CONFLICT ({key}) DO UPDATE SET {sets}{touch} "
        "WHERE ({stored}) IS DISTINCT FROM ({new}) RETURNING (xmax = 0)"
    ).format(
        table=name,
        cols=sql.SQL(", ").join(cols),
        values=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        key=sql.Identifier(key),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in data),
        touch=touch,
        stored=sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=name, c=c) for c in data),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{c}").format(c=c) for c in data),
    )
    row = conn.execute(query, list(values.values())).fetchone()
    if row is None:
        return "unchanged"
    return "inserted" if row[0] else "updated"


def upsert_facility(conn: Conn, *, facility: Facility) -> Change:
    """Create or update a facility."""
    row = conn.execute(
        "INSERT INTO facilities (facility_id, name, district, name_display) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (facility_id) DO UPDATE SET name = EXCLUDED.name, "
        "district = EXCLUDED.district, name_display = EXCLUDED.name_display"
        " WHERE (facilities.name, facilities.district, facilities.name_display) IS DISTINCT FROM"
        " (EXCLUDED.name, EXCLUDED.district, EXCLUDED.name_display) RETURNING (xmax = 0)",
        (facility.facility_id, facility.name, facility.district, facility.name_display),
    ).fetchone()
    if row is None:
        return "unchanged"
    return "inserted" if row[0] else "updated"


def list_facilities(conn: Conn) -> list[Facility]:
    """All facilities."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT facility_id, name, district, name_display FROM facilities ORDER BY facility_id"
        ).fetchall()
    return [Facility.model_validate(r) for r in rows]


def list_rules(conn: Conn) -> list[CountingRule]:
    """The counting rules agreed by the centers."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM counting_rules ORDER BY rule_id").fetchall()
    return [CountingRule.model_validate(r) for r in rows]


def upsert_rule(conn: Conn, *, rule: CountingRule) -> Change:
    """Create or change a counting rule (figures of every period follow the new rule)."""
    return _upsert(conn, table="counting_rules", key="rule_id", values=rule.model_dump())


def upsert_program(
    conn: Conn, *, program: Program, year: int | None = None, targets: Targets | None = None
) -> Change:
    """Create or update a program and, with a year, its targets."""
    if (
        conn.execute(
            "SELECT 1 FROM facilities WHERE facility_id = %s", (program.facility_id,)
        ).fetchone()
        is None
    ):
        raise RegistryError(f"unknown facility {program.facility_id!r}")
    if (
        conn.execute(
            "SELECT 1 FROM counting_rules WHERE rule_id = %s", (program.rule_id,)
        ).fetchone()
        is None
    ):
        raise RegistryError(f"unknown counting rule {program.rule_id!r}")
    data = program.model_dump()
    values = {"program_id": data["program_id"], **{c: data[c] for c in _PROGRAM_COLS}}
    change = _upsert(conn, table="programs", key="program_id", values=values)
    if year is not None and targets is not None:
        target_change = _set_program_targets(
            conn, program_id=program.program_id, year=year, targets=targets
        )
        if change == "unchanged" and target_change:
            change = "updated"
    return change


def _set_program_targets(conn: Conn, *, program_id: str, year: int, targets: Targets) -> bool:
    """Store a program's targets for a year; whether anything changed."""
    cols = [sql.Identifier(c) for c in _TARGET_COLS]
    query = sql.SQL(
        "INSERT INTO program_targets (program_id, year, {cols}) VALUES (%s, %s, {values})"
        " ON CONFLICT (program_id, year) DO UPDATE SET {sets}"
        " WHERE ({stored}) IS DISTINCT FROM ({new})"
    ).format(
        cols=sql.SQL(", ").join(cols),
        values=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in cols),
        stored=sql.SQL(", ").join(sql.SQL("program_targets.{c}").format(c=c) for c in cols),
        new=sql.SQL(", ").join(sql.SQL("EXCLUDED.{c}").format(c=c) for c in cols),
    )
    values = targets.model_dump()
    cur = conn.execute(query, [program_id, year, *(values[c] for c in _TARGET_COLS)])
    return cur.rowcount > 0


def set_node_target(conn: Conn, *, target: NodeTarget) -> None:
    """Set an explicit target of a hierarchy node (a facility, a function, …) or the city."""
    cols = [sql.Identifier(c) for c in _TARGET_COLS]
    query = sql.SQL(
        "INSERT INTO node_targets (year, facility_id, node, {cols}) VALUES (%s, %s, %s, {values})"
        " ON CONFLICT (year, facility_id, node) DO UPDATE SET {sets}"
    ).format(
        cols=sql.SQL(", ").join(cols),
        values=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in cols),
    )
    values = target.targets.model_dump()
    conn.execute(
        query, [target.year, target.facility_id, target.node, *(values[c] for c in _TARGET_COLS)]
    )


def list_programs(
    conn: Conn, *, facility_id: str | None = None, year: int | None = None
) -> list[ProgramWithTargets]:
    """Programs (of one facility, or all) with their targets for `year`."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT p.*, t.unique_persons, t.person_visits, t.cases, t.unique_persons_male,"
            " t.unique_persons_female FROM programs p "
            "LEFT JOIN program_targets t ON t.program_id = p.program_id AND t.year = %(year)s "
            "WHERE %(facility)s::text IS NULL OR p.facility_id = %(facility)s "
            "ORDER BY p.facility_id, p.program_id",
            {"facility": facility_id, "year": year},
        ).fetchall()
    result = []
    for r in rows:
        targets = Targets(**{c: r.pop(c) for c in _TARGET_COLS})
        r.pop("updated_at")
        result.append(ProgramWithTargets(**r, year=year, targets=targets))
    return result


def _scope(scope: Principal) -> dict[str, Any]:
    """The query parameters of a principal's member scope."""
    programs = list(scope.program_ids) if scope.program_ids is not None else None
    return {"scope_facility": scope.facility_id, "scope_programs": programs}


def _seal(
    cipher: FieldCipher | None,
    *,
    stored: bytes | None,
    value: str | date | list[str] | None,
    context: str,
) -> bytes | None:
    """The ciphertext to store for `value`: the stored one when it already holds it."""
    if value is None or value == []:
        return None
    if cipher is None:
        raise RegistryError("phone, birth date and needs are encrypted: set WELFARE_DATA_KEY")
    if isinstance(value, list):
        if stored is not None and cipher.open_list(stored, context=context) == value:
            return stored
        return cipher.seal_list(value, context=context)
    text = value.isoformat() if isinstance(value, date) else value
    if stored is not None and cipher.decrypt(stored, context=context) == text:
        return stored
    return cipher.encrypt(text, context=context)


def upsert_member(
    conn: Conn, *, member: MemberIn, key: bytes, cipher: FieldCipher | None = None
) -> Change:
    """Create or update a member with consents, hashed credentials and enrolments.

    Phone, birth date and needs are encrypted with `cipher` (needed when any is given); a
    value that did not change keeps its stored ciphertext, so an unchanged member stays
    unchanged.
    """
    if (
        conn.execute(
            "SELECT 1 FROM facilities WHERE facility_id = %s", (member.facility_id,)
        ).fetchone()
        is None
    ):
        raise RegistryError(f"unknown facility {member.facility_id!r}")
    identity = (
        identity_hash(name=member.display_name, birth_date=member.birth_date, key=key)
        if member.birth_date
        else None
    )
    person_id = person_id_for(member_ref=member.member_ref, identity=identity, key=key)
    conn.execute(
        "INSERT INTO persons (person_id, identity_hash) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (person_id, identity),
    )
    ref = member.member_ref
    stored = conn.execute(
        "SELECT phone_enc, birth_date_enc, main_needs_enc FROM members WHERE member_ref = %s",
        (ref,),
    ).fetchone() or (None, None, None)
    tail = phone_tail(member.phone)
    values: dict[str, Any] = {
        "member_ref": ref,
        "facility_id": member.facility_id,
        "person_id": person_id,
        "display_name": member.display_name,
        "gender": member.gender,
        "birth_month": member.birth_date.replace(day=1) if member.birth_date else None,
        "birth_date_enc": _seal(
            cipher,
            stored=stored[1],
            value=member.birth_date,
            context=member_context("birth_date", ref),
        ),
        "recipient": member.recipient,
        "disability": member.disability,
        "phone_enc": _seal(
            cipher, stored=stored[0], value=member.phone, context=member_context("phone", ref)
        ),
        "phone_tail_hash": cipher.lookup_hash(tail, purpose="phone_tail")
        if cipher and tail
        else None,
        "neighbourhood": member.neighbourhood,
        "main_needs_enc": _seal(
            cipher,
            stored=stored[2],
            value=list(member.main_needs),
            context=member_context("main_needs", ref),
        ),
        "status": member.status,
    }
    change = _upsert(conn, table="members", key="member_ref", values=values)
    touched = _sync_consents(conn, member_ref=member.member_ref, consents=member.consents)
    touched |= _sync_credentials(conn, member=member, key=key)
    touched |= _sync_enrolments(conn, member_ref=member.member_ref, programs=member.programs)
    if change == "unchanged" and touched:
        change = "updated"
    return change


def _sync_consents(conn: Conn, *, member_ref: str, consents: list[Consent]) -> bool:
    """Make the stored consents equal the given ones."""
    touched = False
    kinds = [c.kind for c in consents]
    cur = conn.execute(
        "DELETE FROM member_consents WHERE member_ref = %s AND NOT (kind = ANY(%s))",
        (member_ref, kinds),
    )
    touched |= cur.rowcount > 0
    for c in consents:
        cur = conn.execute(
            "INSERT INTO member_consents (member_ref, kind, granted_on, withdrawn_on) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (member_ref, kind) DO UPDATE SET "
            "granted_on = EXCLUDED.granted_on, withdrawn_on = EXCLUDED.withdrawn_on "
            "WHERE (member_consents.granted_on, member_consents.withdrawn_on) "
            "IS DISTINCT FROM (EXCLUDED.granted_on, EXCLUDED.withdrawn_on)",
            (member_ref, c.kind, c.granted_on, c.withdrawn_on),
        )
        touched |= cur.rowcount > 0
    return touched


def _sync_credentials(conn: Conn, *, member: MemberIn, key: bytes) -> bool:
    """Store the member's card/NFC identifiers as keyed hashes; revoke ones no longer listed.

    One hash per key version the facility uses (two during a key rotation), each with the
    UID sealed so a later rotation can hash it again (ingest_api/registry/keys.py).
    """
    versions = keys.ensure_versions(conn, facility_id=member.facility_id)
    uids = [(u, "card") for u in member.card_uids] + [(u, "nfc") for u in member.nfc_uids]
    wanted: dict[str, tuple[str, str, int]] = {}
    for uid, kind in uids:
        for version, digest in keys.hashes_of(
            key, facility_id=member.facility_id, versions=versions, uid=uid
        ).items():
            wanted[digest] = (uid, kind, version)
    touched = False
    for digest, (uid, kind, version) in wanted.items():
        row = conn.execute(
            "SELECT member_ref, revoked_at IS NOT NULL, uid_sealed IS NULL "
            "FROM member_credentials WHERE credential_hash = %s",
            (digest,),
        ).fetchone()
        if row is not None and row[0] != member.member_ref:
            raise RegistryError(f"a {kind} identifier is already registered to another member")
        sealed = keys.seal_uid(key, uid=uid, member_ref=member.member_ref)
        if row is None:
            conn.execute(
                "INSERT INTO member_credentials (credential_hash, member_ref, kind, key_version,"
                " uid_sealed) VALUES (%s, %s, %s, %s, %s)",
                (digest, member.member_ref, kind, version, sealed),
            )
            touched = True
        elif row[1] or row[2]:
            # Revoked and given back; or registered before UIDs were sealed: seal it now.
            conn.execute(
                "UPDATE member_credentials SET revoked_at = NULL, "
                "uid_sealed = coalesce(uid_sealed, %s) WHERE credential_hash = %s",
                (sealed, digest),
            )
            touched = touched or bool(row[1])
    cur = conn.execute(
        "UPDATE member_credentials SET revoked_at = now() WHERE member_ref = %s "
        "AND revoked_at IS NULL AND NOT (credential_hash = ANY(%s))",
        (member.member_ref, list(wanted)),
    )
    return touched or cur.rowcount > 0


def _sync_enrolments(conn: Conn, *, member_ref: str, programs: Mapping[str, str | None]) -> bool:
    """Enrol in the listed programs (with fee overrides); end enrolments no longer listed."""
    touched = False
    for program_id, fee in programs.items():
        if (
            conn.execute("SELECT 1 FROM programs WHERE program_id = %s", (program_id,)).fetchone()
            is None
        ):
            raise RegistryError(f"unknown program {program_id!r}")
        cur = conn.execute(
            "INSERT INTO enrolments (member_ref, program_id, fee_type) VALUES (%s, %s, %s) "
            "ON CONFLICT (member_ref, program_id) DO UPDATE SET fee_type = EXCLUDED.fee_type, "
            "ended_on = NULL WHERE (enrolments.fee_type, enrolments.ended_on) "
            "IS DISTINCT FROM (EXCLUDED.fee_type, NULL::date)",
            (member_ref, program_id, fee),
        )
        touched |= cur.rowcount > 0
    cur = conn.execute(
        "UPDATE enrolments SET ended_on = CURRENT_DATE WHERE member_ref = %s "
        "AND ended_on IS NULL AND NOT (program_id = ANY(%s))",
        (member_ref, list(programs)),
    )
    return touched or cur.rowcount > 0


def member_in_scope(conn: Conn, *, member_ref: str, scope: Principal) -> bool:
    """Whether the member exists and lies within the principal's scope."""
    query = sql.SQL("SELECT 1 FROM members m WHERE m.member_ref = %(ref)s AND {}").format(_VISIBLE)
    return conn.execute(query, {"ref": member_ref, **_scope(scope)}).fetchone() is not None


def member_exists(conn: Conn, *, member_ref: str) -> bool:
    """Whether any member (in any center) has this number (for the audit of a denial only)."""
    return (
        conn.execute("SELECT 1 FROM members WHERE member_ref = %s", (member_ref,)).fetchone()
        is not None
    )


def _members(
    conn: Conn,
    *,
    where: sql.Composable,
    params: dict[str, Any],
    cipher: FieldCipher,
    limit: int = 1,
) -> list[Member]:
    """Members (masked) matching `where` over `members m`, in member_ref order."""
    with conn.cursor(row_factory=dict_row) as cur:
        query = sql.SQL(
            "SELECT m.*,"
            " (SELECT count(*) FROM member_credentials c WHERE c.member_ref = m.member_ref"
            "  AND c.revoked_at IS NULL) AS credential_count,"
            " coalesce((SELECT jsonb_object_agg(e.program_id, e.fee_type) FROM enrolments e"
            "  WHERE e.member_ref = m.member_ref AND e.ended_on IS NULL), '{{}}') AS programs,"
            " coalesce((SELECT jsonb_agg(jsonb_build_object('kind', k.kind, 'granted_on',"
            "  k.granted_on, 'withdrawn_on', k.withdrawn_on) ORDER BY k.kind)"
            "  FROM member_consents k WHERE k.member_ref = m.member_ref), '[]') AS consents"
            " FROM members m WHERE {} ORDER BY m.member_ref LIMIT %(limit)s"
        ).format(where)
        rows = cur.execute(query, {**params, "limit": limit}).fetchall()
    found = []
    for row in rows:
        ref = row["member_ref"]
        birth: date | None = row["birth_month"]
        phone = cipher.open_text(row["phone_enc"], context=member_context("phone", ref))
        found.append(
            Member(
                member_ref=ref,
                facility_id=row["facility_id"],
                person_id=row["person_id"],
                display_name=row["display_name"],
                gender=row["gender"],
                birth_year=birth.year if birth else None,
                recipient=row["recipient"],
                disability=row["disability"],
                phone_masked=mask_phone(phone),
                neighbourhood=row["neighbourhood"],
                main_needs=cipher.open_list(
                    row["main_needs_enc"], context=member_context("main_needs", ref)
                ),
                status=row["status"],
                consents=[Consent.model_validate(c) for c in row["consents"]],
                credential_count=int(row["credential_count"]),
                programs=dict(sorted(row["programs"].items())),
            )
        )
    return found


def get_member(
    conn: Conn, *, member_ref: str, scope: Principal, cipher: FieldCipher
) -> Member | None:
    """A member with masked sensitive fields, or None (also when outside the scope)."""
    found = _members(
        conn,
        where=sql.SQL("m.member_ref = %(ref)s AND {}").format(_VISIBLE),
        params={"ref": member_ref, **_scope(scope)},
        cipher=cipher,
    )
    return found[0] if found else None


def search_members(
    conn: Conn,
    *,
    scope: Principal,
    cipher: FieldCipher,
    name: str | None = None,
    phone_last4: str | None = None,
    limit: int = 50,
) -> list[Member]:
    """Members in scope whose name contains `name` and/or whose phone ends in `phone_last4`.

    The phone is never searched in clear: its last four digits are matched by keyed hash.
    """
    tail_hash = cipher.lookup_hash(phone_last4, purpose="phone_tail") if phone_last4 else None
    return _members(
        conn,
        where=sql.SQL(
            "(%(name)s::text IS NULL OR strpos(m.display_name, %(name)s) > 0)"
            " AND (%(tail)s::text IS NULL OR m.phone_tail_hash = %(tail)s) AND {}"
        ).format(_VISIBLE),
        params={"name": name, "tail": tail_hash, **_scope(scope)},
        cipher=cipher,
        limit=limit,
    )


def get_sensitive(
    conn: Conn, *, member_ref: str, scope: Principal, cipher: FieldCipher
) -> MemberSensitive | None:
    """Birth date and phone in clear, or None (also outside the scope; callers audit)."""
    query = sql.SQL(
        "SELECT birth_date_enc, phone_enc FROM members m WHERE m.member_ref = %(ref)s AND {}"
    ).format(_VISIBLE)
    row = conn.execute(query, {"ref": member_ref, **_scope(scope)}).fetchone()
    if row is None:
        return None
    return MemberSensitive(
        member_ref=member_ref,
        birth_date=cipher.open_date(row[0], context=member_context("birth_date", member_ref)),
        phone=cipher.open_text(row[1], context=member_context("phone", member_ref)),
    )


def set_status(conn: Conn, *, member_ref: str, status: str) -> bool:
    """Change a member's status; moved-out and deceased members drop off every roster."""
    cur = conn.execute(
        "UPDATE members SET status = %s, updated_at = now() WHERE member_ref = %s "
        "AND status IS DISTINCT FROM %s",
        (status, member_ref, status),
    )
    return cur.rowcount > 0


def register_visitor(conn: Conn, *, visitor: VisitorIn) -> Change:
    """Register a one-off visitor (idempotent on the visitor code)."""
    cur = conn.execute(
        "INSERT INTO visitors (visitor_code, facility_id, gender, age_band, neighbourhood, purpose)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (visitor_code) DO NOTHING",
        (
            visitor.visitor_code,
            visitor.facility_id,
            visitor.gender,
            visitor.age_band,
            visitor.neighbourhood,
            visitor.purpose,
        ),
    )
    return "inserted" if cur.rowcount else "unchanged"


def register_contact(
    conn: Conn,
    *,
    contact: ContactIn,
    timezone: str = DEFAULT_TIMEZONE,
    cipher: FieldCipher | None = None,
) -> Change:
    """Record a meeting with a resident met during community organizing (counted under its
    program). A second meeting with the same resident is a new record; the same code at the
    same moment is the same meeting sent again ("unchanged").

    Their needs are free text: stored only encrypted (`cipher` is needed when there are any).
    """
    needs = _seal(
        cipher,
        stored=None,
        value=contact.needs or None,
        context=contact_context(contact.contact_code),
    )
    cur = conn.execute(
        "INSERT INTO community_contacts (contact_code, facility_id, program_id, gender, age_band,"
        " neighbourhood, place, met_at, service_date, needs_enc) VALUES (%s, %s, %s, %s, %s, %s,"
        " %s, %s, (%s::timestamptz AT TIME ZONE %s)::date, %s)"
        " ON CONFLICT (contact_code, met_at) DO NOTHING",
        (
            contact.contact_code,
            contact.facility_id,
            contact.program_id,
            contact.gender,
            contact.age_band,
            contact.neighbourhood,
            contact.place,
            contact.met_at,
            contact.met_at,
            timezone,
            needs,
        ),
    )
    return "inserted" if cur.rowcount else "unchanged"
