"""Per-facility credential keys: derived from the center's master, identified, used to sign.

The center holds one master secret (`WELFARE_CREDENTIAL_KEY` at the center). Each facility's
card-hash key is derived from it with HKDF-SHA256 (facility id and key version as info), so a
kiosk — provisioned with its facility's key only — exposes at most its own center when stolen.
Version 0 is the master itself: card hashes registered before per-facility keys keep working
until the facility's key is rotated. A key travels as text (64 hex characters); its bytes, as
every hash and HMAC here takes them, are that text's UTF-8 (`broker.config.key_bytes`).

A kiosk never needs the version numbers: it holds a set of keys and recognises each by its
`key_id`. Rosters and configurations are signed under every key the facility currently uses,
and a new key reaches a kiosk wrapped (AES-GCM) under a key it already holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.models import WrappedKey

LEGACY_VERSION = 0
_FACILITY_SALT = b"welfare facility credential key v1"


def facility_key(master: bytes, *, facility_id: str, version: int) -> str:
    """The card-hash key of one facility at one key version (64 hex characters)."""
    if version < 0:
        raise ValueError("key versions start at 0")
    if version == LEGACY_VERSION:
        return master.decode()
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_FACILITY_SALT,
        info=f"{facility_id}|{version}".encode(),
    )
    return hkdf.derive(master).hex()


def subkey(key: bytes, purpose: str) -> bytes:
    """A key for one purpose, so no two uses of a credential key ever share an HMAC input."""
    return hmac.new(key, b"welfare|" + purpose.encode(), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A short public id of a key (16 hex characters); reveals nothing of the key."""
    return subkey(key, "key-id").hex()[:16]


def sign(keys: Iterable[bytes], message: bytes) -> list[str]:
    """HMAC-SHA256 signatures of `message`, one per key (hex)."""
    return [hmac.new(subkey(k, "sign"), message, hashlib.sha256).hexdigest() for k in keys]


def verify(keys: Iterable[bytes], message: bytes, signatures: Iterable[str]) -> bool:
    """Whether any of `signatures` was made with any of `keys`."""
    wanted = list(signatures)
    for expected in sign(keys, message):
        if any(hmac.compare_digest(expected, s) for s in wanted):
            return True
    return False


def wrap_aad(facility_id: str, device_id: str) -> bytes:
    """What a wrapped key is bound to: the one device it was sent to."""
    return f"welfare-key|{facility_id}|{device_id}".encode()


def wrap_key(*, key_text: str, under: bytes, aad: bytes) -> WrappedKey:
    """Encrypt a key (its text) under another key the receiving kiosk holds."""
    nonce = os.urandom(12)
    sealed = AESGCM(subkey(under, "wrap")).encrypt(nonce, key_text.encode(), aad)
    return WrappedKey(
        key_id=key_id(key_text.encode()),
        wrapped_with=key_id(under),
        nonce=base64.b64encode(nonce).decode(),
        ciphertext=base64.b64encode(sealed).decode(),
    )


def unwrap_key(wrapped: WrappedKey, *, under: bytes, aad: bytes) -> str:
    """The key text of `wrapped`; ValueError if `under` is not the key it was wrapped with."""
    try:
        text = (
            AESGCM(subkey(under, "wrap"))
            .decrypt(base64.b64decode(wrapped.nonce), base64.b64decode(wrapped.ciphertext), aad)
            .decode()
        )
    except (InvalidTag, ValueError) as exc:
        raise ValueError("wrapped key does not open with this key") from exc
    if key_id(text.encode()) != wrapped.key_id:
        raise ValueError("unwrapped key does not match its id")
    return text
