"""Key rotation of the personal fields: re-encrypt every value with the current data key.

1. Generate a new key (`welfare keys new`); set WELFARE_DATA_KEY to it and move the old one
   to WELFARE_DATA_KEY_PREVIOUS; restart the service (it reads both).
2. `welfare keys rotate`: every encrypted value not under the current key is decrypted with
   the old one and encrypted with the new; the phone look-up hashes are recomputed.
3. When it reports nothing left under old keys, remove the old key from the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql

from ingest_api.core.fieldcrypto import (
    FieldCipher,
    absence_note_context,
    account_context,
    contact_context,
    member_context,
    phone_tail,
    service_context,
)


@dataclass(frozen=True, slots=True)
class RotationResult:
    """How many values were re-encrypted, and how many were already current."""

    rotated: int
    current: int


@dataclass(frozen=True, slots=True)
class _Encrypted:
    """One encrypted column: its table, the row's key, and what its context is made of.

    `context_key` (default `key`) names the column the encryption context is made of (a
    resident's meetings share their code's context but are separate rows).
    """

    table: str
    key: str
    column: str
    context: Callable[[str], str]
    context_key: str | None = None


def _member_field(name: str) -> _Encrypted:
    """A member's encrypted field `<name>_enc`."""
    return _Encrypted("members", "member_ref", f"{name}_enc", lambda ref: member_context(name, ref))


# Every encrypted column: a new one is a line here, and `welfare keys rotate` covers it.
ENCRYPTED: Final = (
    _member_field("phone"),
    _member_field("birth_date"),
    _member_field("main_needs"),
    _Encrypted("community_contacts", "contact_id", "needs_enc", contact_context, "contact_code"),
    _Encrypted("service_records", "service_id", "note_enc", service_context, "event_id"),
    _Encrypted("user_accounts", "username", "totp_secret", account_context),
    _Encrypted("absence_calls", "call_id", "note_enc", absence_note_context),  # wellbeing calls
)


def _rotate_column(
    conn: psycopg.Connection[Any], cipher: FieldCipher, spec: _Encrypted
) -> tuple[int, int]:
    """Re-encrypt one column's values that are not under the current key."""
    table, key, column, context = spec.table, spec.key, spec.column, spec.context
    context_key = spec.context_key
    rows = conn.execute(
        sql.SQL(
            "SELECT {key}, {ctx}, {col} FROM {table} WHERE {col} IS NOT NULL FOR UPDATE"
        ).format(
            key=sql.Identifier(key),
            ctx=sql.Identifier(context_key or key),
            col=sql.Identifier(column),
            table=sql.Identifier(table),
        )
    ).fetchall()
    rotated = 0
    for ident, context_value, blob in rows:
        if cipher.is_current(blob):
            continue
        where = context(context_value)
        fresh = cipher.encrypt(cipher.decrypt(blob, context=where), context=where)
        conn.execute(
            sql.SQL("UPDATE {table} SET {col} = %s WHERE {key} = %s").format(
                table=sql.Identifier(table), col=sql.Identifier(column), key=sql.Identifier(key)
            ),
            (fresh, ident),
        )
        rotated += 1
    return rotated, len(rows) - rotated


def rotate(conn: psycopg.Connection[Any], *, cipher: FieldCipher) -> RotationResult:
    """Re-encrypt everything under old keys and recompute the look-up hashes (one transaction)."""
    rotated = current = 0
    with conn.transaction():
        for spec in ENCRYPTED:
            r, c = _rotate_column(conn, cipher, spec)
            rotated, current = rotated + r, current + c
        # The look-up hashes are keyed with the current key too.
        for ref, blob in conn.execute(
            "SELECT member_ref, phone_enc FROM members WHERE phone_enc IS NOT NULL"
        ).fetchall():
            tail = phone_tail(cipher.decrypt(blob, context=member_context("phone", ref)))
            conn.execute(
                "UPDATE members SET phone_tail_hash = %s WHERE member_ref = %s",
                (cipher.lookup_hash(tail, purpose="phone_tail") if tail else None, ref),
            )
    return RotationResult(rotated, current)
