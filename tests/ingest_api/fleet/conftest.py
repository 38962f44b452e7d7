"""Fleet test helpers: heartbeats and presence as a device would send them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.models import DeviceHealth, DevicePresence, ReaderState

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def health(
    device: str = "meal-1",
    *,
    facility: str = "B",
    at: datetime = T0,
    interval_s: float | None = 10.0,
    **fields: Any,
) -> DeviceHealth:
    """A heartbeat of `facility/device` reported at `at` (device clock)."""
    doc: dict[str, Any] = {
        "facility_id": facility,
        "device_id": device,
        "reported_at": at,
        "software_version": "0.1.0",
        "uptime_s": 100.0,
        "outbox_pending": 0,
        "heartbeat_interval_s": interval_s,
        "readers": {"card-usb": ReaderState(kind="card", connected=True)},
        "disk_free_mb": 10_000.0,
        "disk_total_mb": 15_000.0,
    }
    doc.update(fields)
    return DeviceHealth(**doc)


def presence(
    device: str = "meal-1", *, facility: str = "B", state: str = "offline", reason: str
) -> DevicePresence:
    """A presence message (an offline one with reason connection_lost is the last will)."""
    return DevicePresence(
        facility_id=facility,
        device_id=device,
        state=state,
        reason=reason,
    )


def seconds(n: float) -> timedelta:
    """n seconds."""
    return timedelta(seconds=n)
