"""The fleet's rules as pure functions: the offline grace, lateness, and what raises an alert.

Online/offline has hysteresis in two places. The broker holds a device's last will for its
will delay, so a link that drops and comes back within it announces nothing. The center calls
a device offline only after `missed_heartbeats` of its own intervals plus `slack_s` of silence
(or when the delayed will arrives), and online again at the very next heartbeat: a heartbeat
delayed by retransmissions on a lossy link is late, not missing, and never flips the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ingest_api.core.config import FleetSettings
from ingest_api.fleet.const import LATE_AFTER_INTERVALS, AlertKind, DeviceState


def interval(interval_s: float | None, rules: FleetSettings) -> timedelta:
    """A device's heartbeat period: as its heartbeat says, else the default."""
    return timedelta(seconds=interval_s or rules.default_heartbeat_interval_s)


def offline_grace(interval_s: float | None, rules: FleetSettings) -> timedelta:
    """How long a device may be silent before it is called offline."""
    return interval(interval_s, rules) * rules.missed_heartbeats + timedelta(seconds=rules.slack_s)


def is_silent(
    *, last_seen_at: datetime, interval_s: float | None, now: datetime, rules: FleetSettings
) -> bool:
    """Whether a device has been silent beyond its grace period."""
    return now - last_seen_at > offline_grace(interval_s, rules)


def is_late(
    *, last_seen_at: datetime, interval_s: float | None, now: datetime, rules: FleetSettings
) -> bool:
    """Whether a heartbeat is overdue (shown to operators; it does not change the state)."""
    return now - last_seen_at > interval(interval_s, rules) * LATE_AFTER_INTERVALS


@dataclass(frozen=True, slots=True)
class ExpectedRoster:
    """The roster version a device should hold, and when the center issued it."""

    version: str
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the center knows of one device when it evaluates alerts."""

    facility_id: str
    device_id: str
    state: DeviceState
    state_since: datetime
    last_seen_at: datetime
    reported_at: datetime
    outbox_pending: int
    oldest_pending_at: datetime | None
    roster_version: str | None
    readers: dict[str, Any] = field(default_factory=dict)
    disk_free_mb: float | None = None
    disk_total_mb: float | None = None
    clock_offset_s: float | None = None
    outbox_parked: int | None = None
    storage_days_left: float | None = None
    # max(reported_at - received_at) of the recent heartbeats: the fallback clock estimate
    best_arrival_skew_s: float | None = None
    expected: ExpectedRoster | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(facility_id, device_id)."""
        return (self.facility_id, self.device_id)


def backlog_age(facts: DeviceFacts, *, now: datetime) -> timedelta | None:
    """Age of the oldest unconfirmed event now, free of the device clock's offset.

    Both ends of `reported_at - oldest_pending_at` are device times, so their difference is
    right even on a wrong clock; the time since the report was received is added on.
    """
    if facts.outbox_pending <= 0 or facts.oldest_pending_at is None:
        return None
    at_report = max(facts.reported_at - facts.oldest_pending_at, timedelta(0))
    return at_report + max(now - facts.last_seen_at, timedelta(0))


def clock_offset(facts: DeviceFacts) -> float | None:
    """The device clock's offset: its own ack-based estimate, else the heartbeats' bound."""
    if facts.clock_offset_s is not None:
        return facts.clock_offset_s
    return facts.best_arrival_skew_s


def readers_down(readers: dict[str, Any]) -> list[str]:
    """Names of the readers and outputs a heartbeat reports disconnected."""
    return sorted(
        name
        for name, state in readers.items()
        if isinstance(state, dict) and not state.get("connected", True)
    )


def _minutes(span: timedelta) -> str:
    """A duration in Korean, to the minute."""
    minutes = int(span.total_seconds() // 60)
    if minutes >= 120:
        return f"{minutes // 60}시간 {minutes % 60}분"
    return f"{minutes}분"


def conditions(facts: DeviceFacts, *, now: datetime, rules: FleetSettings) -> dict[AlertKind, str]:
    """Every alert condition that holds for a device now, each with its detail for operators."""
    found: dict[AlertKind, str] = {}
    offline_for = now - facts.state_since
    if (
        facts.state is DeviceState.OFFLINE
        and offline_for.total_seconds() >= rules.offline_alert_after_s
    ):
        found[AlertKind.OFFLINE] = f"{_minutes(offline_for)}째 오프라인"
    age = backlog_age(facts, now=now)
    if age is not None and age.total_seconds() >= rules.backlog_alert_after_s:
        found[AlertKind.BACKLOG] = (
            f"미전송 {facts.outbox_pending}건, 가장 오래된 것 {_minutes(age)} 전"
        )
    down = readers_down(facts.readers)
    if down:
        found[AlertKind.READER_MISSING] = "연결 끊김: " + ", ".join(down)
    offset = clock_offset(facts)
    if offset is not None and abs(offset) > rules.clock_alert_s:
        found[AlertKind.CLOCK_SKEW] = f"기기 시계 {offset:+.0f}초"
    if facts.disk_free_mb is not None:
        pct = 100 * facts.disk_free_mb / facts.disk_total_mb if facts.disk_total_mb else None
        days = facts.storage_days_left
        if (
            facts.disk_free_mb < rules.disk_alert_free_mb
            or (pct is not None and pct < rules.disk_alert_free_pct)
            or (days is not None and days < rules.disk_alert_days)
        ):
            share = f" ({pct:.1f}%)" if pct is not None else ""
            left = f", 오프라인 기록 {days:.1f}일분" if days is not None else ""
            found[AlertKind.DISK_LOW] = f"여유 {facts.disk_free_mb:.0f} MB{share}{left}"
    if facts.outbox_parked:
        found[AlertKind.EVENTS_PARKED] = (
            f"센터가 거부한 이벤트 {facts.outbox_parked}건이 기기에 보관됨 (오류 기록 확인)"
        )
    expected = facts.expected
    if expected is not None and facts.roster_version != expected.version:
        behind = now - expected.issued_at
        if behind.total_seconds() >= rules.roster_alert_after_s:
            found[AlertKind.ROSTER_BEHIND] = (
                f"보유 {facts.roster_version or '없음'}, 최신 {expected.version} "
                f"({_minutes(behind)} 전 발행)"
            )
    return found
