"""Keyed hashes of card and NFC identifiers: the clear UID never leaves the reader."""

from __future__ import annotations

import hashlib
import hmac
import re

from broker.const import MIN_KEY_BYTES

_SEPARATORS = re.compile(r"[\s:\-_.]")
_VALID = re.compile(r"^[0-9A-Z]{4,64}$")


def normalize_credential(raw: str) -> str:
    """Normalise a card/NFC identifier as readers type it: upper case, no separators or 0x."""
    text = _SEPARATORS.sub("", raw.strip().upper())
    text = text.removeprefix("0X")
    if not _VALID.match(text):
        raise ValueError(f"not a card or NFC identifier: {raw!r}")
    return text


def credential_hash(raw: str, *, key: bytes) -> str:
    """Return the keyed hash (HMAC-SHA256, hex) of a normalised card/NFC identifier."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"credential hash key must be at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, normalize_credential(raw).encode(), hashlib.sha256).hexdigest()
