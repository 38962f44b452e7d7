"""Globally unique, time-ordered event ids (UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def uuid7(at: datetime | None = None) -> uuid.UUID:
    """Return a UUIDv7 whose 48-bit timestamp is `at` (now by default), monotonic per process."""
    global _last_ms, _last_rand
    ms = int((at or datetime.now(UTC)).timestamp() * 1000)
    with _lock:
        if ms == _last_ms:
            # Same millisecond: increment the random part so ids still sort in creation order.
            _last_rand = (_last_rand + 1) & ((1 << 74) - 1)
        else:
            _last_ms = ms
            _last_rand = int.from_bytes(os.urandom(10), "big") & ((1 << 73) - 1)
        rand = _last_rand
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def uuid7_time(value: uuid.UUID) -> datetime:
    """Return the timestamp (millisecond precision, UTC) carried by a UUIDv7."""
    if value.version != 7:
        raise ValueError(f"{value} is not a UUIDv7")
    return datetime.fromtimestamp((value.int >> 80) / 1000, tz=UTC)


def truncate_ms(at: datetime) -> datetime:
    """Return `at` truncated to whole milliseconds, the precision of a UUIDv7."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)
