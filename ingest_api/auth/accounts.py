"""Accounts: add, reset, disable, change role, change password (`welfare user …` and pages).

Every change is audited in the same transaction: creations, resets and disabling as
`account`, a role, center, programs or grants changed as `role_change`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest_api.auth import passwords, totp
from ingest_api.core.audit import write_audit
from ingest_api.core.fieldcrypto import FieldCipher, account_context
from ingest_api.core.security import (
    CENTER_ROLES,
    GRANTABLE,
    SECOND_FACTOR_ROLES,
    USERNAME_PATTERN,
    Permission,
    Role,
)
from ingest_api.core.sessions import end_user_sessions


class AccountError(ValueError):
    """An account change that cannot be made (the message says why)."""


@dataclass(frozen=True, slots=True)
class Issued:
    """What a person is handed once: a temporary password and, for some roles, a TOTP secret."""

    username: str
    password: str
    totp_secret: str | None

    @property
    def totp_uri(self) -> str | None:
        """The otpauth:// URI for an authenticator app."""
        if self.totp_secret is None:
            return None
        return totp.provisioning_uri(self.totp_secret, username=self.username)


def _check(role: Role, facility_id: str | None, grants: Sequence[str]) -> None:
    """The rules of an account's shape."""
    if role == Role.SERVICE:
        raise AccountError("machines get tokens (`welfare token add`), not accounts")
    if (role in CENTER_ROLES) != (facility_id is not None):
        raise AccountError("center managers and staff need --facility; other roles none")
    unknown = set(grants) - {g.value for g in GRANTABLE}
    if unknown:
        raise AccountError(f"cannot be granted: {sorted(unknown)}")


def _facility_exists(conn: psycopg.Connection[Any], facility_id: str | None) -> None:
    """Refuse an unknown center."""
    if facility_id is not None and (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        raise AccountError(f"unknown facility {facility_id!r}")


def add_user(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    role: Role,
    actor: str,
    facility_id: str | None = None,
    program_ids: Sequence[str] = (),
    display_name: str = "",
    password: str | None = None,
    cipher: FieldCipher | None = None,
) -> Issued:
    """Create an account with a temporary password (changed at the first sign-in)."""
    if not re.match(USERNAME_PATTERN, username):
        raise AccountError("username: 2-64 lowercase letters, digits and . _ @ -")
    _check(role, facility_id, ())
    _facility_exists(conn, facility_id)
    given = password is not None
    password = password if password is not None else passwords.temporary_password()
    try:
        passwords.check_policy(password, username=username)
    except passwords.PasswordPolicyError as exc:
        raise AccountError(str(exc)) from exc
    secret, sealed = _new_totp(username, role, cipher)
    row = conn.execute(
        "INSERT INTO user_accounts (username, display_name, role, facility_id, program_ids,"
        " password_hash, must_change_password, totp_secret) VALUES (%s, %s, %s, %s, %s, %s,"
        " %s, %s) ON CONFLICT (username) DO NOTHING RETURNING username",
        (
            username,
            display_name,
            role.value,
            facility_id,
            list(program_ids),
            passwords.hash_password(password),
            not given,
            sealed,
        ),
    ).fetchone()
    if row is None:
        raise AccountError(f"account {username!r} exists already")
    write_audit(
        conn,
        actor=actor,
        action="account",
        subject=f"account:{username}",
        detail={"created": role.value, "facility_id": facility_id, "programs": list(program_ids)},
    )
    return Issued(username, password, secret)


def _new_totp(
    username: str, role: Role, cipher: FieldCipher | None
) -> tuple[str | None, bytes | None]:
    """A fresh TOTP secret (clear, sealed) for roles that need one."""
    if role not in SECOND_FACTOR_ROLES:
        return None, None
    if cipher is None:
        raise AccountError(f"{role.value} signs in with a second factor: set WELFARE_DATA_KEY")
    secret = totp.new_secret()
    return secret, cipher.encrypt(secret, context=account_context(username))


def get_account(conn: psycopg.Connection[Any], *, username: str) -> dict[str, Any] | None:
    """An account row (password hash and sealed secret included), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM user_accounts WHERE username = %s", (username,)
        ).fetchone()


def list_accounts(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every account without its secrets."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT username, display_name, role, facility_id, program_ids, grants,"
            " must_change_password, totp_secret IS NOT NULL AS second_factor, disabled_at,"
            " created_at FROM user_accounts ORDER BY username"
        ).fetchall()


def reset_user(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    actor: str,
    new_second_factor: bool = False,
    cipher: FieldCipher | None = None,
) -> Issued:
    """A new temporary password (and TOTP secret if asked); sessions end, the lockout lifts."""
    account = get_account(conn, username=username)
    if account is None:
        raise AccountError(f"no account {username!r}")
    password = passwords.temporary_password()
    secret: str | None = None
    sealed = account["totp_secret"]
    role = Role(account["role"])
    if new_second_factor or (role in SECOND_FACTOR_ROLES and sealed is None):
        secret, sealed = _new_totp(username, role, cipher)
    conn.execute(
        "UPDATE user_accounts SET password_hash = %s, must_change_password = true,"
        " totp_secret = %s, totp_last_step = CASE WHEN %s THEN NULL ELSE totp_last_step END,"
        " disabled_at = NULL, updated_at = now() WHERE username = %s",
        (passwords.hash_password(password), sealed, secret is not None, username),
    )
    conn.execute("DELETE FROM sign_in_attempts WHERE name_key = %s", (username,))
    end_user_sessions(conn, username=username)
    write_audit(
        conn,
        actor=actor,
        action="account",
        subject=f"account:{username}",
        detail={"reset": True, "new_second_factor": secret is not None},
    )
    return Issued(username, password, secret)


def disable_user(conn: psycopg.Connection[Any], *, username: str, actor: str) -> bool:
    """Disable an account and end its sessions; False if it was disabled already."""
    if get_account(conn, username=username) is None:
        raise AccountError(f"no account {username!r}")
    changed = conn.execute(
        "UPDATE user_accounts SET disabled_at = now(), updated_at = now()"
        " WHERE username = %s AND disabled_at IS NULL",
        (username,),
    ).rowcount
    end_user_sessions(conn, username=username)
    if changed:
        write_audit(
            conn,
            actor=actor,
            action="account",
            subject=f"account:{username}",
            detail={"disabled": True},
        )
    return bool(changed)


def set_role(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    actor: str,
    role: Role,
    facility_id: str | None = None,
    program_ids: Sequence[str] = (),
    grants: Sequence[Permission] = (),
    cipher: FieldCipher | None = None,
) -> Issued | None:
    """Change an account's role, center, programs or grants (audited as a role change).

    Sessions end (the next request signs in with the new rights). Moving to a role that needs
    a second factor enrols one: the new secret is returned.
    """
    account = get_account(conn, username=username)
    if account is None:
        raise AccountError(f"no account {username!r}")
    granted = [g.value for g in grants]
    _check(role, facility_id, granted)
    _facility_exists(conn, facility_id)
    secret: str | None = None
    sealed = account["totp_secret"]
    if role in SECOND_FACTOR_ROLES and sealed is None:
        secret, sealed = _new_totp(username, role, cipher)
    before = {
        "role": account["role"],
        "facility_id": account["facility_id"],
        "programs": list(account["program_ids"]),
        "grants": list(account["grants"]),
    }
    after = {
        "role": role.value,
        "facility_id": facility_id,
        "programs": list(program_ids),
        "grants": granted,
    }
    if before == after:
        return None
    conn.execute(
        "UPDATE user_accounts SET role = %s, facility_id = %s, program_ids = %s, grants = %s,"
        " totp_secret = %s, updated_at = now() WHERE username = %s",
        (role.value, facility_id, list(program_ids), granted, sealed, username),
    )
    end_user_sessions(conn, username=username)
    write_audit(
        conn,
        actor=actor,
        action="role_change",
        subject=f"account:{username}",
        detail={"before": before, "after": after},
    )
    return Issued(username, "", secret) if secret else None


def change_password(
    conn: psycopg.Connection[Any], *, username: str, current: str, new: str
) -> None:
    """A person changes their own password (the current one proves it is them)."""
    account = get_account(conn, username=username)
    if account is None or not passwords.verify_password(account["password_hash"], current):
        raise AccountError("현재 비밀번호가 맞지 않습니다.")
    if current == new:
        raise AccountError("새 비밀번호는 지금과 달라야 합니다.")
    try:
        passwords.check_policy(new, username=username)
    except passwords.PasswordPolicyError as exc:
        raise AccountError(str(exc)) from exc
    conn.execute(
        "UPDATE user_accounts SET password_hash = %s, must_change_password = false,"
        " updated_at = now() WHERE username = %s",
        (passwords.hash_password(new), username),
    )
    write_audit(
        conn,
        actor=username,
        action="account",
        subject=f"account:{username}",
        detail={"password_changed": True},
    )
