"""Staff PIN: only a salted PBKDF2 hash is configured, never the PIN itself."""

from __future__ import annotations

import hashlib
import hmac
import secrets

_SCHEME = "pbkdf2_sha256"
_ITERATIONS = 200_000


def hash_pin(pin: str, *, iterations: int = _ITERATIONS, salt: str | None = None) -> str:
    """Hash a PIN as 'pbkdf2_sha256$iterations$salt$hexdigest'."""
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValueError("a staff PIN is 4 to 12 digits")
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), iterations)
    return f"{_SCHEME}${iterations}${salt}${digest.hex()}"


def verify_pin(pin: str, encoded: str | None) -> bool:
    """Whether `pin` matches the configured hash; no hash configured means no staff mode."""
    if not encoded:
        return False
    try:
        scheme, iterations, salt, expected = encoded.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)
