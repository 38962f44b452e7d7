"""Vocabulary of the fleet: device states, why they change, alert kinds and their labels."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final


class DeviceState(StrEnum):
    """What the center says about a device's link."""

    ONLINE = "online"
    OFFLINE = "offline"


class StateReason(StrEnum):
    """Why a device's state changed (device_state_log.reason)."""

    FIRST_HEARTBEAT = "first_heartbeat"  # a device the center had never heard of
    HEARTBEAT = "heartbeat"  # an offline device spoke again
    CONNECTED = "connected"  # its presence said online
    SHUTDOWN = "shutdown"  # its presence said it stops cleanly
    CONNECTION_LOST = "connection_lost"  # its last will, published by the broker
    SILENT = "silent"  # no heartbeat for longer than its grace period


class AlertKind(StrEnum):
    """What operators are alerted about (device_alerts.kind)."""

    OFFLINE = "offline"
    BACKLOG = "backlog"
    READER_MISSING = "reader_missing"
    CLOCK_SKEW = "clock_skew"
    DISK_LOW = "disk_low"
    ROSTER_BEHIND = "roster_behind"
    EVENTS_PARKED = "events_parked"
    BACKUP_FAILED = "backup_failed"


STATE_LABELS: Final = {DeviceState.ONLINE: "온라인", DeviceState.OFFLINE: "오프라인"}
ALERT_LABELS: Final = {
    AlertKind.OFFLINE: "오프라인 지속",
    AlertKind.BACKLOG: "미전송 적체",
    AlertKind.READER_MISSING: "리더 연결 끊김",
    AlertKind.CLOCK_SKEW: "시계 오차",
    AlertKind.DISK_LOW: "디스크 부족",
    AlertKind.ROSTER_BEHIND: "명단 미갱신",
    AlertKind.EVENTS_PARKED: "거부된 이벤트 보관",
    AlertKind.BACKUP_FAILED: "중앙 백업 실패",
}
REASON_LABELS: Final = {
    StateReason.FIRST_HEARTBEAT: "첫 하트비트",
    StateReason.HEARTBEAT: "하트비트 재개",
    StateReason.CONNECTED: "연결됨",
    StateReason.SHUTDOWN: "정상 종료",
    StateReason.CONNECTION_LOST: "연결 끊김(유언 메시지)",
    StateReason.SILENT: "응답 없음",
}

# The clock fallback (no ack round trip yet) looks at the heartbeats of this window.
SKEW_WINDOW: Final = timedelta(minutes=15)
# A heartbeat overdue by this many intervals shows as late (display only; not a state).
LATE_AFTER_INTERVALS: Final = 1.5
# Only one monitor evaluates at a time, whatever the number of app instances.
MONITOR_LOCK_ID: Final = 7_305_227_211
# Heartbeat partitions (plain PostgreSQL) are made this many days ahead.
PARTITION_DAYS_AHEAD: Final = 3
# A re-delivered heartbeat (QoS 1) is recognised within this window and stored once.
DUPLICATE_WINDOW: Final = timedelta(days=1)
