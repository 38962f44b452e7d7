"""Passwords: argon2id hashes (argon2-cffi), a policy, and equal work for unknown names."""

from __future__ import annotations

import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS: Final = 10
_HASHER: Final = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
# Verified against when the account does not exist, so both answers take as long.
_DUMMY: Final = _HASHER.hash(secrets.token_urlsafe(16))
_COMMON: Final = frozenset(
    {"password", "passw0rd", "qwerty", "welfare", "letmein", "admin", "iloveyou"}
)


class PasswordPolicyError(ValueError):
    """A password the policy refuses (the message says why, in Korean for staff)."""


def check_policy(password: str, *, username: str) -> None:
    """Refuse short, obvious or name-like passwords."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordPolicyError(f"비밀번호는 {MIN_PASSWORD_CHARS}자 이상이어야 합니다.")
    folded = password.lower()
    if username.lower() in folded or any(folded.startswith(c) for c in _COMMON):
        raise PasswordPolicyError("아이디나 흔한 단어로 된 비밀번호는 쓸 수 없습니다.")
    if len(set(password)) < 5:
        raise PasswordPolicyError("같은 글자가 너무 많이 반복됩니다.")


def hash_password(password: str) -> str:
    """The argon2id hash to store."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; None (no such account) costs the same and fails."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash uses weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


def temporary_password() -> str:
    """A random password handed to a person once; they change it at the first sign-in."""
    return secrets.token_urlsafe(12)
