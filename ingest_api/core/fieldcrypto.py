"""Personal fields encrypted at rest: AES-256-GCM in the application, the key outside the database.

A value is stored as `version | key id | nonce | ciphertext+tag`. The associated data names the
table, column and row (`members.phone:B-M0001`), so a ciphertext copied into another row or
column does not decrypt. The key comes from WELFARE_DATA_KEY (a random secret); AES and lookup
keys are derived from it with HKDF. During a rotation the previous keys still decrypt, and
`welfare keys rotate` re-encrypts every value with the current key (docs/security.md).

Look-ups that need a personal value (a phone's last digits) use keyed hashes of it
(`lookup_hash`), never the clear text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from broker.config import key_bytes

_VERSION: Final = b"\x01"
_KID_BYTES: Final = 4
_NONCE_BYTES: Final = 12


class FieldCryptoError(ValueError):
    """A stored value cannot be decrypted (unknown key, or altered)."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose, derived from the data key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


@dataclass(frozen=True, slots=True)
class _Key:
    """One data key: its id, AES key and lookup key."""

    kid: bytes
    aes: AESGCM
    lookup: bytes


def _key(secret: bytes) -> _Key:
    """Derive the parts of one data key."""
    aes = _derive(secret, b"smart-welfare/fields/aes-256-gcm/v1")
    kid = hashlib.sha256(_derive(secret, b"smart-welfare/fields/key-id/v1")).digest()[:_KID_BYTES]
    return _Key(kid, AESGCM(aes), _derive(secret, b"smart-welfare/fields/lookup/v1"))


class FieldCipher:
    """Encrypts and decrypts personal fields; the first key is current, the rest only decrypt."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        """Keys as raw secrets, the current one first."""
        if not secrets:
            raise ValueError("a field cipher needs at least one key")
        self._keys = [_key(s) for s in secrets]
        self._by_kid = {k.kid: k for k in self._keys}

    @classmethod
    def from_secrets(cls, current: SecretStr, previous: Sequence[SecretStr] = ()) -> FieldCipher:
        """From settings' secrets (WELFARE_DATA_KEY and WELFARE_DATA_KEY_PREVIOUS)."""
        return cls([key_bytes(current), *(key_bytes(p) for p in previous)])

    @property
    def current_kid(self) -> bytes:
        """The id of the key new values are encrypted with."""
        return self._keys[0].kid

    def encrypt(self, value: str, *, context: str) -> bytes:
        """Encrypt text bound to its place (`table.column:row`)."""
        key = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = key.aes.encrypt(nonce, value.encode(), context.encode())
        return _VERSION + key.kid + nonce + sealed

    def decrypt(self, blob: bytes, *, context: str) -> str:
        """The text of a stored value; FieldCryptoError if no key opens it here."""
        data = bytes(blob)
        if len(data) < 1 + _KID_BYTES + _NONCE_BYTES + 16 or data[:1] != _VERSION:
            raise FieldCryptoError(f"not an encrypted field ({context})")
        kid = data[1 : 1 + _KID_BYTES]
        key = self._by_kid.get(kid)
        if key is None:
            raise FieldCryptoError(f"encrypted with an unknown key ({context}): set the key")
        nonce = data[1 + _KID_BYTES : 1 + _KID_BYTES + _NONCE_BYTES]
        try:
            plain = key.aes.decrypt(nonce, data[1 + _KID_BYTES + _NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise FieldCryptoError(f"altered or misplaced value ({context})") from exc
        return plain.decode()

    def is_current(self, blob: bytes) -> bool:
        """Whether a stored value is already encrypted with the current key."""
        return bytes(blob)[1 : 1 + _KID_BYTES] == self.current_kid

    def lookup_hash(self, value: str, *, purpose: str) -> str:
        """A keyed hash for finding rows by a personal value without storing it in clear."""
        message = f"{purpose}|{value}".encode()
        return hmac.new(self._keys[0].lookup, message, hashlib.sha256).hexdigest()

    # Typed helpers for the registry's fields.

    def seal_text(self, value: str | None, *, context: str) -> bytes | None:
        """Encrypt optional text (None stays None)."""
        return None if value is None else self.encrypt(value, context=context)

    def open_text(self, blob: bytes | None, *, context: str) -> str | None:
        """Decrypt optional text."""
        return None if blob is None else self.decrypt(blob, context=context)

    def seal_date(self, value: date | None, *, context: str) -> bytes | None:
        """Encrypt an optional date."""
        return None if value is None else self.encrypt(value.isoformat(), context=context)

    def open_date(self, blob: bytes | None, *, context: str) -> date | None:
        """Decrypt an optional date."""
        text = self.open_text(blob, context=context)
        return None if text is None else date.fromisoformat(text)

    def seal_list(self, values: Sequence[str], *, context: str) -> bytes | None:
        """Encrypt a list of short texts (an empty list is stored as nothing)."""
        if not values:
            return None
        return self.encrypt(json.dumps(list(values), ensure_ascii=False), context=context)

    def open_list(self, blob: bytes | None, *, context: str) -> list[str]:
        """Decrypt a list of short texts."""
        text = self.open_text(blob, context=context)
        return [] if text is None else [str(v) for v in json.loads(text)]


def member_context(column: str, member_ref: str) -> str:
    """Where a member's encrypted value belongs (its associated data)."""
    return f"members.{column}:{member_ref}"


def contact_context(contact_code: str) -> str:
    """Where a community contact's encrypted needs belong."""
    return f"community_contacts.needs:{contact_code}"


def service_context(event_id: object) -> str:
    """Where the encrypted note of a service staff recorded belongs (its event's id)."""
    return f"service_records.note:{event_id}"


def account_context(username: str) -> str:
    """Where an account's encrypted TOTP secret belongs."""
    return f"user_accounts.totp_secret:{username}"


def absence_note_context(call_id: object) -> str:
    """Where a wellbeing call's encrypted note belongs (ingest_api/registry/absence.py)."""
    return f"absence_calls.note:{call_id}"


def phone_tail(phone: str | None) -> str | None:
    """The last four digits of a phone number (what staff search by), or None."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    return digits[-4:] if len(digits) >= 4 else None
