"""Service tokens for machines: scoped, optionally bound to a center, expiring, revocable.

The token is shown once (`swt_<id>_<secret>`); the database keeps its SHA-256 only (a random
256-bit secret needs no slow hash). Issuing and revoking are audited.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest_api.core.audit import write_audit
from ingest_api.core.security import TOKEN_SCOPES, Permission
from ingest_api.core.sessions import TOKEN_PREFIX, digest, new_secret

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


class TokenError(ValueError):
    """A token that cannot be issued or revoked as asked."""


def issue_token(
    conn: psycopg.Connection[Any],
    *,
    name: str,
    scopes: Sequence[Permission],
    actor: str,
    now: datetime,
    facility_id: str | None = None,
    days: int | None = None,
) -> str:
    """A new token with `scopes`; returns it (the only time it is shown)."""
    if not _NAME.match(name):
        raise TokenError("token name: 2-64 lowercase letters, digits and . _ -")
    if not scopes:
        raise TokenError("a token needs at least one scope")
    refused = sorted(s.value for s in scopes if s not in TOKEN_SCOPES)
    if refused:
        raise TokenError(f"a machine's token cannot carry {refused}")
    if facility_id is not None and (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        raise TokenError(f"unknown facility {facility_id!r}")
    alphabet = string.ascii_lowercase + string.digits
    token_id = "".join(secrets.choice(alphabet) for _ in range(12))
    secret = new_secret()
    row = conn.execute(
        "INSERT INTO api_tokens (token_id, name, secret_hash, scopes, facility_id, created_by,"
        " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING token_id",
        (
            token_id,
            name,
            digest(secret),
            sorted(s.value for s in set(scopes)),
            facility_id,
            actor,
            now,
            now + timedelta(days=days) if days else None,
        ),
    ).fetchone()
    if row is None:
        raise TokenError(f"a live token named {name!r} exists: revoke it first")
    write_audit(
        conn,
        actor=actor,
        action="token",
        subject=f"token:{name}",
        detail={
            "issued": sorted(s.value for s in scopes),
            "facility_id": facility_id,
            "days": days,
        },
    )
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def revoke_token(conn: psycopg.Connection[Any], *, name: str, actor: str, now: datetime) -> bool:
    """Revoke the live token of that name; False if there is none."""
    changed = conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL",
        (now, name),
    ).rowcount
    if changed:
        write_audit(
            conn, actor=actor, action="token", subject=f"token:{name}", detail={"revoked": True}
        )
    return bool(changed)


def list_tokens(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every token without its secret."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT name, token_id, scopes, facility_id, created_by, created_at, expires_at,"
            " revoked_at, last_used_at FROM api_tokens ORDER BY created_at"
        ).fetchall()
