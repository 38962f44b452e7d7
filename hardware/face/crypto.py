"""Encryption of face templates at rest (AES-256-GCM), bound to the member they belong to."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.face import ENCODING_SIZE, open_sealed, seal

FaceVector = npt.NDArray[np.float64]


def generate_key() -> bytes:
    """A new random 256-bit template key (provisioned per device, never committed)."""
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    """The key as text for an environment variable or key file."""
    return base64.urlsafe_b64encode(key).decode()


def load_key(*, env: str = "WELFARE_FACE_KEY", path: Path | None = None) -> bytes:
    """Read the template key from the environment or a key file (urlsafe base64)."""
    text = os.environ.get(env)
    if text is None and path is not None:
        text = path.read_text().strip()
    if text is None:
        raise LookupError(f"no face template key: set {env} or provide a key file")
    key = base64.urlsafe_b64decode(text)
    if len(key) != 32:
        raise ValueError("the face template key must be 32 bytes (AES-256)")
    return key


class TemplateCipher:
    """Seal and open face encodings (broker/face.py's format); a blob opens for one member."""

    def __init__(self, key: bytes) -> None:
        """Use a 32-byte AES key."""
        if len(key) != 32:
            raise ValueError("the face template key must be 32 bytes (AES-256)")
        self._key = key

    def encrypt(self, member_ref: str, encoding: FaceVector) -> bytes:
        """Seal one encoding: version, random nonce, ciphertext+tag."""
        vector = np.asarray(encoding, dtype="<f8")
        if vector.shape != (ENCODING_SIZE,):
            raise ValueError(f"a face encoding has {ENCODING_SIZE} values, not {vector.shape}")
        # The member ref is authenticated data: a blob copied onto another member's row
        # fails to decrypt instead of silently matching the wrong person.
        return seal(self._key, member_ref, vector.tobytes())

    def decrypt(self, member_ref: str, blob: bytes) -> FaceVector:
        """Open one sealed encoding; raises `TemplateUnreadable` if tampered or not this key's."""
        plain = open_sealed(self._key, member_ref, blob)
        return np.frombuffer(plain, dtype="<f8").astype(np.float64)
