"""Signing in: password, lockout with back-off, the second factor; every attempt audited.

A wrong password, an unknown name and a disabled account get the same answer, cost the same
argon2 work and count alike against the typed name; after `lockout_after` failures in a row the
name waits `lockout_base_s`, doubling with each further failure (up to `lockout_max_s`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg

from ingest_api.auth import passwords, totp
from ingest_api.auth.accounts import get_account
from ingest_api.core.audit import write_audit
from ingest_api.core.config import SecuritySettings
from ingest_api.core.fieldcrypto import FieldCipher, FieldCryptoError, account_context
from ingest_api.core.security import SECOND_FACTOR_ROLES, USERNAME_PATTERN, Principal, Role
from ingest_api.core.sessions import principal_of_account

WRONG: Final = "아이디 또는 비밀번호가 맞지 않습니다."
WRONG_CODE: Final = "인증 코드가 맞지 않습니다. 앱의 새 코드를 입력하세요."


def locked_message(seconds: float) -> str:
    """What a locked name is told (the same whether or not the account exists)."""
    minutes = max(1, int((seconds + 59) // 60))
    return f"로그인 실패가 너무 많습니다. {minutes}분 후에 다시 시도하세요."


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one step of signing in."""

    ok: bool
    message: str | None = None
    username: str | None = None
    second_factor_needed: bool = False
    principal: Principal | None = None


def name_key(typed: str) -> str:
    """How a typed name is counted: trimmed, lowercased, at most 64 characters."""
    return typed.strip().lower()[:64]


def _locked_for(conn: psycopg.Connection[Any], *, key: str, now: datetime) -> float:
    """Seconds this name still waits (0: not locked)."""
    row = conn.execute(
        "SELECT locked_until FROM sign_in_attempts WHERE name_key = %s", (key,)
    ).fetchone()
    if row is None or row[0] is None or row[0] <= now:
        return 0.0
    return float((row[0] - now).total_seconds())


def _count_failure(
    conn: psycopg.Connection[Any], *, key: str, now: datetime, policy: SecuritySettings
) -> float:
    """Count a failure; returns the seconds the name is now locked for (0: not locked)."""
    row = conn.execute(
        "INSERT INTO sign_in_attempts (name_key, failures, last_failure_at) VALUES (%s, 1, %s)"
        " ON CONFLICT (name_key) DO UPDATE SET failures = sign_in_attempts.failures + 1,"
        " last_failure_at = EXCLUDED.last_failure_at RETURNING failures",
        (key, now),
    ).fetchone()
    failures = int(row[0]) if row else 1
    if failures < policy.lockout_after:
        return 0.0
    wait = min(policy.lockout_base_s * 2 ** (failures - policy.lockout_after), policy.lockout_max_s)
    conn.execute(
        "UPDATE sign_in_attempts SET locked_until = %s WHERE name_key = %s",
        (now + timedelta(seconds=wait), key),
    )
    return float(wait)


def check_password(
    conn: psycopg.Connection[Any],
    *,
    typed_name: str,
    password: str,
    now: datetime,
    policy: SecuritySettings,
    channel: str,
) -> Outcome:
    """The first step: is this the account's password? (Audited either way.)"""
    key = name_key(typed_name)
    waiting = _locked_for(conn, key=key, now=now)
    if waiting:
        _failed(conn, key=key, why="locked", channel=channel)
        return Outcome(False, locked_message(waiting))
    account = get_account(conn, username=key) if re.match(USERNAME_PATTERN, key) else None
    stored = account["password_hash"] if account else None
    good = passwords.verify_password(stored, password)
    if not good or account is None or account["disabled_at"] is not None:
        why = "unknown" if account is None else "disabled" if good else "password"
        _failed(conn, key=key, why=why, channel=channel)
        locked = _count_failure(conn, key=key, now=now, policy=policy)
        return Outcome(False, locked_message(locked) if locked else WRONG)
    conn.execute("DELETE FROM sign_in_attempts WHERE name_key = %s", (key,))
    if passwords.needs_rehash(account["password_hash"]):
        conn.execute(
            "UPDATE user_accounts SET password_hash = %s WHERE username = %s",
            (passwords.hash_password(password), key),
        )
    if Role(account["role"]) in SECOND_FACTOR_ROLES:
        return Outcome(True, username=key, second_factor_needed=True)
    _succeeded(conn, username=key, channel=channel, second_factor=False)
    return Outcome(True, username=key, principal=principal_of_account(account))


def check_second_factor(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    code: str,
    now: datetime,
    policy: SecuritySettings,
    cipher: FieldCipher | None,
    channel: str,
) -> Outcome:
    """The second step for administrators and managers: the authenticator's current code."""
    waiting = _locked_for(conn, key=username, now=now)
    if waiting:
        _failed(conn, key=username, why="locked", channel=channel)
        return Outcome(False, locked_message(waiting))
    account = get_account(conn, username=username)
    if account is None or account["disabled_at"] is not None:
        return Outcome(False, WRONG)
    secret: str | None = None
    if account["totp_secret"] is not None and cipher is not None:
        try:
            secret = cipher.decrypt(account["totp_secret"], context=account_context(username))
        except FieldCryptoError:
            secret = None
    if secret is None:
        _failed(conn, key=username, why="second_factor_unavailable", channel=channel)
        return Outcome(False, "2단계 인증을 확인할 수 없습니다. 관리자에게 재설정을 요청하세요.")
    step = totp.matching_step(secret, code, now=now, last_step=account["totp_last_step"])
    if step is None:
        _failed(conn, key=username, why="second_factor", channel=channel)
        locked = _count_failure(conn, key=username, now=now, policy=policy)
        return Outcome(False, locked_message(locked) if locked else WRONG_CODE)
    conn.execute(
        "UPDATE user_accounts SET totp_last_step = %s WHERE username = %s", (step, username)
    )
    conn.execute("DELETE FROM sign_in_attempts WHERE name_key = %s", (username,))
    _succeeded(conn, username=username, channel=channel, second_factor=True)
    return Outcome(True, username=username, principal=principal_of_account(account))


def _failed(conn: psycopg.Connection[Any], *, key: str, why: str, channel: str) -> None:
    """Audit a failed attempt (the auditor sees why; the person does not)."""
    write_audit(
        conn,
        actor=key or "(empty)",
        action="sign_in_failed",
        subject=f"account:{key}",
        detail={"why": why, "channel": channel},
    )


def _succeeded(
    conn: psycopg.Connection[Any], *, username: str, channel: str, second_factor: bool
) -> None:
    """Audit a sign-in."""
    write_audit(
        conn,
        actor=username,
        action="sign_in",
        subject=f"account:{username}",
        detail={"channel": channel, "second_factor": second_factor},
    )
