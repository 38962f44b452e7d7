"""What the fleet's pages and API show: devices, alerts, history. No personal data at all."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ingest_api.fleet.const import AlertKind, DeviceState


class AlertView(BaseModel):
    """One alert as operators see it."""

    alert_id: int
    facility_id: str
    device_id: str
    kind: AlertKind
    label: str
    detail: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class DeviceView(BaseModel):
    """One kiosk: state, last heard, backlog, roster, software, open alerts."""

    facility_id: str
    facility_name: str | None
    device_id: str
    state: DeviceState
    state_label: str
    state_since: datetime
    late: bool = Field(description="Online, but a heartbeat is overdue (shown, not a state).")
    last_seen_at: datetime
    offline_after_s: float = Field(description="Silence after which this device is offline.")
    outbox_pending: int
    backlog_age_s: float | None
    roster_version: str | None
    expected_roster_version: str | None
    roster_versions_behind: int | None
    software_version: str
    heartbeat_interval_s: float | None
    clock_offset_s: float | None
    cpu_temp_c: float | None
    disk_free_mb: float | None
    outbox_parked: int | None = Field(
        default=None, description="Events the center refused, parked on the device (1.4)."
    )
    readers_down: list[str]
    last_presence: str | None
    open_alerts: int
    unacknowledged_alerts: int


class FleetView(BaseModel):
    """The whole fleet, with its counts."""

    at: datetime
    online: int
    offline: int
    open_alerts: int
    devices: list[DeviceView]


class HeartbeatPoint(BaseModel):
    """One heartbeat of a device's history."""

    received_at: datetime
    outbox_pending: int
    backlog_age_s: float | None
    gap_s: float | None = Field(description="Seconds since the heartbeat before it.")


class TapsHour(BaseModel):
    """Taps a device decided in one hour (counts only)."""

    hour: datetime
    accepted: int
    refused: int


class StateChange(BaseModel):
    """One change of a device's state."""

    at: datetime
    state: DeviceState
    reason: str
    label: str


class HistoryView(BaseModel):
    """A device's history for its charts."""

    facility_id: str
    device_id: str
    since: datetime
    until: datetime
    heartbeats: list[HeartbeatPoint]
    taps: list[TapsHour]
    states: list[StateChange]


class AcknowledgedOut(BaseModel):
    """How many alerts an acknowledgement marked."""

    acknowledged: int
