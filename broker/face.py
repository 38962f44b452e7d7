"""Sealed face templates: one format on the kiosk and at the center (docs/face.md).

A template is dlib's 128-number face descriptor as little-endian float64, sealed with
AES-256-GCM: version byte, 12-byte nonce, ciphertext and tag. The member ref is authenticated
data, so a blob copied onto another member's row does not open. The key is derived from the
facility's credential key (broker/keys.py), so the kiosks of that facility — and no other —
can open it; the center seals with the same derivation from its master and never opens one.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.keys import subkey

ENCODING_SIZE = 128  # dlib's face descriptor
ENCODING_BYTES = ENCODING_SIZE * 8  # float64
TEMPLATE_VERSION = b"\x01"
_NONCE_BYTES = 12
_AAD_PREFIX = b"welfare-face-template:v1:"
# version + nonce + float64 descriptor + GCM tag
SEALED_BYTES = 1 + _NONCE_BYTES + ENCODING_BYTES + 16


class TemplateUnreadable(ValueError):
    """A sealed template that does not open (wrong key, another member's, tampered, garbled)."""


def face_key(credential_key: bytes) -> bytes:
    """The facility's face-template key (32 bytes) from its credential key (as bytes)."""
    return subkey(credential_key, "face-template")


def seal(key: bytes, member_ref: str, descriptor: bytes) -> bytes:
    """Seal one descriptor (1,024 bytes of little-endian float64) for one member."""
    if len(descriptor) != ENCODING_BYTES:
        raise ValueError(f"a face descriptor is {ENCODING_BYTES} bytes, not {len(descriptor)}")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, descriptor, _AAD_PREFIX + member_ref.encode())
    return TEMPLATE_VERSION + nonce + sealed


def open_sealed(key: bytes, member_ref: str, blob: bytes) -> bytes:
    """The descriptor bytes of a sealed template; TemplateUnreadable if it does not open."""
    if blob[:1] != TEMPLATE_VERSION:
        raise TemplateUnreadable("unknown face template format")
    nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, _AAD_PREFIX + member_ref.encode())
    except InvalidTag as exc:
        raise TemplateUnreadable("face template does not open with this key") from exc
    if len(plain) != ENCODING_BYTES:
        raise TemplateUnreadable("face template has the wrong size")
    return plain


def to_text(blob: bytes) -> str:
    """A sealed template as it travels in a roster (base64)."""
    return base64.b64encode(blob).decode()


def from_text(text: str) -> bytes:
    """A sealed template from a roster; TemplateUnreadable if it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise TemplateUnreadable("face template is not base64") from exc
