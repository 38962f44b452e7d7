"""Accounts, sessions and tokens for tests, made through the product's own functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Final
from unittest import mock

import psycopg

from ingest_api.auth import passwords
from ingest_api.auth.accounts import Issued, add_user, set_role
from ingest_api.auth.tokens import issue_token
from ingest_api.core.fieldcrypto import FieldCipher
from ingest_api.core.security import Permission, Principal, Role, permissions_for
from ingest_api.core.sessions import CSRF_HEADER, SESSION_COOKIE, create_session

# The suite's key of personal fields (random-looking, 32+ bytes, not a placeholder).
DATA_KEY: Final = "suite-data-key-5f1c9a7e2b4d6083-c4e1a9b7f2d6"
CIPHER: Final = FieldCipher([DATA_KEY.encode()])
PASSWORD: Final = "Hangang-bridge-2026"


_REAL_HASH: Final = passwords.hash_password


@cache
def _argon2_once(password: str) -> str:
    """A real argon2id hash of a password, computed once per run (it takes ~0.5 s here)."""
    return _REAL_HASH(password)


def add_account(
    url: str,
    username: str,
    role: Role,
    *,
    facility_id: str | None = None,
    programs: Sequence[str] = (),
    grants: Sequence[Permission] = (),
    password: str = PASSWORD,
) -> Issued:
    """An account with a known password (not temporary), enrolled in TOTP if its role has it.

    Made by the product's add_user; the argon2 hash of the suite's password is reused
    between accounts (each is still a real hash that sign-in verifies).
    """
    with (
        psycopg.connect(url) as conn,
        mock.patch.object(passwords, "hash_password", _argon2_once),
    ):
        issued = add_user(
            conn,
            username=username,
            role=role,
            actor="test",
            facility_id=facility_id,
            program_ids=programs,
            password=password,
            cipher=CIPHER,
        )
        if grants:
            set_role(
                conn,
                username=username,
                actor="test",
                role=role,
                facility_id=facility_id,
                program_ids=programs,
                grants=grants,
                cipher=CIPHER,
            )
    return issued


def session_headers(url: str, username: str) -> dict[str, str]:
    """Headers of a signed-in browser (session cookie and its CSRF token) for that account."""
    with psycopg.connect(url) as conn:
        cookie, csrf = create_session(
            conn,
            username=username,
            second_factor_pending=False,
            now=datetime.now(UTC),
            max_hours=12,
        )
    return {"Cookie": f"{SESSION_COOKIE}={cookie}", CSRF_HEADER: csrf}


def token_headers(
    url: str, name: str, scopes: Sequence[Permission], *, facility_id: str | None = None
) -> dict[str, str]:
    """Headers of a machine with a service token of these scopes."""
    with psycopg.connect(url) as conn:
        token = issue_token(
            conn,
            name=name,
            scopes=scopes,
            actor="test",
            now=datetime.now(UTC),
            facility_id=facility_id,
        )
    return {"Authorization": f"Bearer {token}"}


def principal(role: Role, facility_id: str | None = None, name: str = "tester") -> Principal:
    """A principal as the data layer sees it (for calling store functions directly)."""
    return Principal(
        kind="user",
        name=name,
        role=role,
        permissions=permissions_for(role),
        facility_id=facility_id,
    )
