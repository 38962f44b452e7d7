"""Sessions and service tokens: from a cookie or a bearer token to the principal who acts.

Both are random secrets handed out once; the database keeps only their SHA-256 (a copy of it
signs no one in). Sessions end after an idle time and in any case after an absolute time;
signing out or disabling an account deletes them. Tokens are scoped, may expire, and are
revoked by name. Creating sessions after a sign-in is `ingest_api/auth/signin.py`'s job.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from ingest_api.core.security import Permission, Principal, Role, permissions_for

SESSION_COOKIE: Final = "sw_session"
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
# last_seen_at is written at most this often (a session's idle clock has this resolution).
TOUCH_EVERY: Final = timedelta(seconds=60)
TOKEN_PREFIX: Final = "swt_"  # noqa: S105 - the tokens' visible prefix, not a secret
_TOKEN = re.compile(r"^swt_([a-z0-9]{12})_([A-Za-z0-9_-]{40,64})$")


def digest(secret: str) -> str:
    """The SHA-256 the database keeps of a session or token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh 256-bit random secret, URL-safe."""
    return secrets.token_urlsafe(32)


def principal_of_account(
    row: dict[str, Any], *, session_id: str | None = None, csrf_token: str | None = None
) -> Principal:
    """The principal of an account row (user_accounts)."""
    role = Role(row["role"])
    programs = (
        tuple(row["program_ids"]) if role == Role.CENTER_STAFF and row["program_ids"] else None
    )
    return Principal(
        kind="user",
        name=row["username"],
        role=role,
        permissions=permissions_for(role, frozenset(Permission(g) for g in row["grants"])),
        facility_id=row["facility_id"],
        program_ids=programs,
        session_id=session_id,
        csrf_token=csrf_token,
        display_name=row["display_name"],
        must_change_password=bool(row["must_change_password"]),
    )


def create_session(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    second_factor_pending: bool,
    now: datetime,
    max_hours: float,
) -> tuple[str, str]:
    """A new session; returns (cookie value, CSRF token). The cookie value is never stored."""
    secret = new_secret()
    csrf = new_secret()
    conn.execute(
        "INSERT INTO user_sessions (session_hash, username, created_at, last_seen_at,"
        " expires_at, second_factor_pending, csrf_token) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            digest(secret),
            username,
            now,
            now,
            now + timedelta(hours=max_hours),
            second_factor_pending,
            csrf,
        ),
    )
    return secret, csrf


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session cookie looked up: the principal, or why there is none."""

    principal: Principal | None
    expired: bool = False  # the cookie named a session that ended (ask to sign in again)
    second_factor_pending: bool = False
    username: str | None = None


def load_session(
    conn: psycopg.Connection[Any], *, cookie: str, now: datetime, idle_minutes: int
) -> SessionState:
    """The session a cookie names, if it is still alive; an expired one is deleted."""
    key = digest(cookie)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT s.session_hash, s.last_seen_at, s.expires_at, s.second_factor_pending,"
            " s.csrf_token, a.* FROM user_sessions s JOIN user_accounts a USING (username)"
            " WHERE s.session_hash = %s",
            (key,),
        ).fetchone()
    if row is None:
        return SessionState(None, expired=True)
    if (
        row["disabled_at"] is not None
        or row["expires_at"] <= now
        or row["last_seen_at"] + timedelta(minutes=idle_minutes) <= now
    ):
        conn.execute("DELETE FROM user_sessions WHERE session_hash = %s", (key,))
        return SessionState(None, expired=True)
    if row["second_factor_pending"]:
        return SessionState(None, second_factor_pending=True, username=row["username"])
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        conn.execute(
            "UPDATE user_sessions SET last_seen_at = %s WHERE session_hash = %s", (now, key)
        )
    principal = principal_of_account(row, session_id=key, csrf_token=row["csrf_token"])
    return SessionState(principal, username=row["username"])


@dataclass(frozen=True, slots=True)
class Pending:
    """A session waiting for the second factor."""

    session_id: str
    username: str
    csrf_token: str


def load_pending(conn: psycopg.Connection[Any], *, cookie: str, now: datetime) -> Pending | None:
    """The session a cookie names if it still waits for the second factor (and is alive)."""
    row = conn.execute(
        "SELECT session_hash, username, csrf_token FROM user_sessions WHERE session_hash = %s"
        " AND second_factor_pending AND expires_at > %s",
        (digest(cookie), now),
    ).fetchone()
    return Pending(row[0], row[1], row[2]) if row else None


def end_session(conn: psycopg.Connection[Any], *, session_id: str) -> None:
    """Delete one session (sign-out, or replaced after the second factor)."""
    conn.execute("DELETE FROM user_sessions WHERE session_hash = %s", (session_id,))


def end_user_sessions(conn: psycopg.Connection[Any], *, username: str) -> int:
    """Delete every session of an account (disabled, reset, role changed)."""
    return conn.execute("DELETE FROM user_sessions WHERE username = %s", (username,)).rowcount


def purge_sessions(conn: psycopg.Connection[Any], *, now: datetime, idle_minutes: int) -> int:
    """Delete sessions past their idle or absolute end."""
    return conn.execute(
        "DELETE FROM user_sessions WHERE expires_at <= %s OR last_seen_at <= %s",
        (now, now - timedelta(minutes=idle_minutes)),
    ).rowcount


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Whether a submitted CSRF token is the session's (constant-time)."""
    return bool(expected and given and hmac.compare_digest(expected, given))


def parse_token(value: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed service token, else None."""
    match = _TOKEN.match(value)
    return (match[1], match[2]) if match else None


def load_token(conn: psycopg.Connection[Any], *, value: str, now: datetime) -> Principal | None:
    """The principal of a live service token, or None (unknown, wrong, revoked, expired)."""
    parsed = parse_token(value)
    if parsed is None:
        return None
    token_id, secret = parsed
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT * FROM api_tokens WHERE token_id = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > %s)",
            (token_id, now),
        ).fetchone()
    if row is None or not hmac.compare_digest(row["secret_hash"], digest(secret)):
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY:
        conn.execute("UPDATE api_tokens SET last_used_at = %s WHERE token_id = %s", (now, token_id))
    return Principal(
        kind="token",
        name=row["name"],
        role=Role.SERVICE,
        permissions=frozenset(Permission(s) for s in row["scopes"]),
        facility_id=row["facility_id"],
    )
