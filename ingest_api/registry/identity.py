"""City-wide person ids: the same person registered at two centers is counted once."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import date


def identity_hash(*, name: str, birth_date: date, key: bytes) -> str:
    """Keyed hash of a normalised name and birth date (no clear text leaves this function)."""
    normal = unicodedata.normalize("NFC", "".join(name.split()))
    message = f"{normal}|{birth_date.isoformat()}".encode()
    return hmac.new(key, b"person|" + message, hashlib.sha256).hexdigest()


def person_id_for(*, member_ref: str, identity: str | None, key: bytes) -> str:
    """A stable pseudonymous person id: from the identity when known, else from the member."""
    if identity is not None:
        return f"P-{identity[:20]}"
    digest = hmac.new(key, b"member|" + member_ref.encode(), hashlib.sha256).hexdigest()
    return f"P-{digest[:20]}"


def mask_phone(phone: str | None) -> str | None:
    """Show only the last four digits of a phone number: 010-****-5678."""
    if not phone:
        return None
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 4:
        return "****"
    return "***-****-" + "".join(digits[-4:])
