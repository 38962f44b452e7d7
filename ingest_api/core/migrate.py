"""Versioned migrations: NNNN_name.sql, or .timescaledb.sql / .postgres.sql variants."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from ingest_api.core.fieldcrypto import FieldCipher, contact_context, member_context, phone_tail

_LOG = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescaledb|postgres))?\.sql$")
_LOCK_ID = 7_305_227_201  # advisory lock: one migrator at a time
# A migration whose first line is this marker runs outside a transaction
# (TimescaleDB continuous aggregates cannot be created inside one).
NO_TRANSACTION = "-- migrate: no-transaction"


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    variant: str | None
    sql: str


def timescaledb_enabled(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether this server can run TimescaleDB (installed and preloaded)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') "
        "AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'"
    ).fetchone()
    return bool(row and row[0])


def available(*, timescale: bool) -> list[Migration]:
    """The migrations shipped with the package for this kind of server, in order."""
    found: dict[int, Migration] = {}
    wanted = "timescaledb" if timescale else "postgres"
    for entry in resources.files("ingest_api.core").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version, name, variant = int(match[1]), match[2], match[3]
        if variant not in (None, wanted):
            continue
        if version in found:
            raise RuntimeError(f"two migrations with version {version:04d}")
        found[version] = Migration(version, name, variant, entry.read_text())
    return [found[v] for v in sorted(found)]


def migrate(url: str, *, cipher: FieldCipher | None = None) -> list[int]:
    """Apply every pending migration; returns the versions applied now.

    Run it as the schema owner. `cipher` (from WELFARE_DATA_KEY) encrypts personal fields that
    an older schema kept in clear before the migration that drops their clear columns.
    """
    applied_now: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, variant text,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            timescale = timescaledb_enabled(conn)
            for mig in available(timescale=timescale):
                if mig.version in done:
                    continue
                if mig.version == ENCRYPT_BEFORE:
                    with conn.transaction():
                        _encrypt_clear_fields(conn, cipher)
                _LOG.info("applying migration %04d_%s", mig.version, mig.name)
                record = (
                    "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)"
                )
                if mig.sql.startswith(NO_TRANSACTION):
                    for statement in _statements(mig.sql):
                        conn.execute(statement.encode())
                    conn.execute(record, (mig.version, mig.name, mig.variant))
                else:
                    with conn.transaction():
                        conn.execute(mig.sql.encode())
                        conn.execute(record, (mig.version, mig.name, mig.variant))
                applied_now.append(mig.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


# The migration that drops the clear personal columns; their values are encrypted just before.
ENCRYPT_BEFORE = 35


def _encrypt_clear_fields(
    conn: psycopg.Connection[tuple[object, ...]], cipher: FieldCipher | None
) -> int:
    """Encrypt phone, birth date and needs still held in clear; returns how many rows."""
    members = conn.execute(
        "SELECT member_ref, phone, birth_date, main_needs FROM members"
        " WHERE phone IS NOT NULL OR birth_date IS NOT NULL OR main_needs <> '{}'"
    ).fetchall()
    contacts = conn.execute(
        "SELECT contact_code, needs FROM community_contacts WHERE needs <> ''"
    ).fetchall()
    if not members and not contacts:
        return 0
    if cipher is None:
        raise RuntimeError(
            f"{len(members)} members and {len(contacts)} contacts hold personal fields in"
            " clear: set WELFARE_DATA_KEY and run `welfare ingest migrate` again"
        )
    for ref, phone, birth, needs in members:
        assert isinstance(ref, str)
        tail = phone_tail(str(phone) if phone else None)
        conn.execute(
            "UPDATE members SET phone_enc = %s, phone_tail_hash = %s, birth_date_enc = %s,"
            " main_needs_enc = %s, phone = NULL, birth_date = NULL, main_needs = '{}'"
            " WHERE member_ref = %s",
            (
                cipher.seal_text(
                    str(phone) if phone else None, context=member_context("phone", ref)
                ),
                cipher.lookup_hash(tail, purpose="phone_tail") if tail else None,
                cipher.seal_date(birth, context=member_context("birth_date", ref)),  # type: ignore[arg-type]
                cipher.seal_list(list(needs or []), context=member_context("main_needs", ref)),  # type: ignore[call-overload]
                ref,
            ),
        )
    for code, needs in contacts:
        assert isinstance(code, str)
        conn.execute(
            "UPDATE community_contacts SET needs_enc = %s, needs = '' WHERE contact_code = %s",
            (cipher.seal_text(str(needs), context=contact_context(code)), code),
        )
    _LOG.info(
        "encrypted the personal fields of %d members, %d contacts", len(members), len(contacts)
    )
    return len(members) + len(contacts)


def _statements(sql: str) -> list[str]:
    """Split a no-transaction migration on lines that hold only ';'."""
    return [s.strip() for s in re.split(r"^;\s*$", sql, flags=re.M) if s.strip()]
