"""Data functions that write the fleet's state: heartbeats, presence, silence, acknowledgements.

The consumer calls `record_heartbeats` and `record_presence` inside the transaction of its
batch; the fleet monitor calls `mark_silent`. Each locks the rows of the devices it changes
(in key order, so two writers never deadlock) and decides on the committed state, so the
consumer bringing a device online and the monitor taking it offline cannot cross.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from broker.models import DeviceHealth, DevicePresence
from ingest_api.core.config import FleetSettings
from ingest_api.fleet.const import DUPLICATE_WINDOW, AlertKind, DeviceState, StateReason
from ingest_api.fleet.rules import is_silent, readers_down

Cursor = psycopg.Cursor[Any]
Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A device's health report and when the center received it."""

    health: DeviceHealth
    received_at: datetime

    @property
    def key(self) -> Key:
        """(facility_id, device_id)."""
        return (self.health.facility_id, self.health.device_id)


@dataclass(frozen=True, slots=True)
class Presence:
    """A device's online/offline announcement (or last will) and when it arrived."""

    presence: DevicePresence
    received_at: datetime

    @property
    def key(self) -> Key:
        """(facility_id, device_id)."""
        return (self.presence.facility_id, self.presence.device_id)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a device's state."""

    facility_id: str
    device_id: str
    at: datetime
    state: DeviceState
    reason: StateReason


def _lock(cur: Cursor, keys: Iterable[Key]) -> dict[Key, dict[str, Any]]:
    """Lock the status rows of these devices (sorted: no deadlock) and return them."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    cur.execute(
        "SELECT facility_id, device_id, state, state_since, last_seen_at, last_presence_at "
        "FROM device_status WHERE (facility_id, device_id) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[])) "
        "ORDER BY facility_id, device_id FOR UPDATE",
        ([k[0] for k in ordered], [k[1] for k in ordered]),
    )
    return {
        (r[0], r[1]): dict(
            zip(("state", "state_since", "last_seen_at", "last_presence_at"), r[2:], strict=True)
        )
        for r in cur.fetchall()
    }


def _log(cur: Cursor, transitions: Sequence[Transition]) -> None:
    """Append state changes to device_state_log."""
    if transitions:
        cur.executemany(
            "INSERT INTO device_state_log (facility_id, device_id, at, state, reason) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (t.facility_id, t.device_id, t.at, t.state.value, t.reason.value)
                for t in transitions
            ],
        )


_INSERT_SERIES = """
INSERT INTO device_heartbeats (
    received_at, facility_id, device_id, reported_at, software_version, uptime_s,
    outbox_pending, oldest_pending_at, last_ack_at, roster_version, disk_free_mb, disk_total_mb,
    cpu_temp_c, clock_offset_s, arrival_skew_s, readers_down)
SELECT %(received_at)s, %(facility_id)s, %(device_id)s, %(reported_at)s, %(software_version)s,
       %(uptime_s)s, %(outbox_pending)s, %(oldest_pending_at)s, %(last_ack_at)s,
       %(roster_version)s, %(disk_free_mb)s, %(disk_total_mb)s, %(cpu_temp_c)s,
       %(clock_offset_s)s, %(arrival_skew_s)s, %(readers_down)s
WHERE NOT EXISTS (
    SELECT 1 FROM device_heartbeats
    WHERE facility_id = %(facility_id)s AND device_id = %(device_id)s
      AND reported_at = %(reported_at)s
      AND received_at >= %(received_at)s::timestamptz - %(window)s::interval
      AND received_at <= %(received_at)s::timestamptz + %(window)s::interval)
RETURNING 1
"""

_UPSERT_STATUS = """
INSERT INTO device_status (facility_id, device_id, last_seen_at, reported_at, outbox_pending,
                           health, heartbeat_interval_s, state, state_since)
VALUES (%(facility_id)s, %(device_id)s, %(received_at)s, %(reported_at)s, %(outbox_pending)s,
        %(health)s, %(interval)s, %(state)s, %(state_since)s)
ON CONFLICT (facility_id, device_id) DO UPDATE SET
    last_seen_at = EXCLUDED.last_seen_at, reported_at = EXCLUDED.reported_at,
    outbox_pending = EXCLUDED.outbox_pending, health = EXCLUDED.health,
    heartbeat_interval_s = EXCLUDED.heartbeat_interval_s,
    state = EXCLUDED.state, state_since = EXCLUDED.state_since
"""


def record_heartbeats(cur: Cursor, *, beats: Sequence[Heartbeat]) -> list[Transition]:
    """Store heartbeats in the series, keep each device's newest, bring silent ones online.

    A heartbeat re-delivered by the broker (QoS 1) is stored once. A heartbeat that arrives
    after a newer one (another worker was faster) goes to the series only.
    """
    if not beats:
        return []
    # One round trip for the batch (psycopg pipelines executemany); each statement's own
    # result tells whether its heartbeat was new.
    cur.executemany(
        _INSERT_SERIES,
        [
            {
                "received_at": b.received_at,
                "facility_id": b.health.facility_id,
                "device_id": b.health.device_id,
                "reported_at": b.health.reported_at,
                "software_version": b.health.software_version,
                "uptime_s": b.health.uptime_s,
                "outbox_pending": b.health.outbox_pending,
                "oldest_pending_at": b.health.oldest_pending_at,
                "last_ack_at": b.health.last_ack_at,
                "roster_version": b.health.roster_version,
                "disk_free_mb": b.health.disk_free_mb,
                "disk_total_mb": b.health.disk_total_mb,
                "cpu_temp_c": b.health.cpu_temp_c,
                "clock_offset_s": b.health.clock_offset_s,
                "arrival_skew_s": (b.health.reported_at - b.received_at).total_seconds(),
                "readers_down": len(
                    readers_down({k: v.model_dump() for k, v in b.health.readers.items()})
                ),
                "window": DUPLICATE_WINDOW,
            }
            for b in beats
        ],
        returning=True,
    )
    fresh: list[Heartbeat] = []
    for beat in beats:
        if cur.fetchone() is not None:  # a re-delivered copy is neither history nor news
            fresh.append(beat)
        cur.nextset()
    by_device: dict[Key, list[Heartbeat]] = {}
    for beat in sorted(fresh, key=lambda b: b.received_at):
        by_device.setdefault(beat.key, []).append(beat)
    known = _lock(cur, by_device)
    transitions: list[Transition] = []
    rows = []
    for key, received in sorted(by_device.items()):
        beat = received[-1]  # the newest is what the device is now
        row = known.get(key)
        if row is not None and row["last_seen_at"] > beat.received_at:
            continue
        if row is None:
            state, since = DeviceState.ONLINE, received[0].received_at
            transitions.append(Transition(*key, since, state, StateReason.FIRST_HEARTBEAT))
        elif row["state"] == DeviceState.OFFLINE and beat.received_at > row["state_since"]:
            # Online from the first heartbeat after it went offline, even when several
            # arrive in one batch (a link that stalled delivers its backlog at once).
            state = DeviceState.ONLINE
            since = next(b.received_at for b in received if b.received_at > row["state_since"])
            transitions.append(Transition(*key, since, state, StateReason.HEARTBEAT))
        else:
            state, since = DeviceState(row["state"]), row["state_since"]
        rows.append(
            {
                "facility_id": key[0],
                "device_id": key[1],
                "received_at": beat.received_at,
                "reported_at": beat.health.reported_at,
                "outbox_pending": beat.health.outbox_pending,
                "health": Jsonb(beat.health.model_dump(mode="json")),
                "interval": beat.health.heartbeat_interval_s,
                "state": state.value,
                "state_since": since,
            }
        )
    cur.executemany(_UPSERT_STATUS, rows)
    _log(cur, transitions)
    return transitions


def record_presence(cur: Cursor, *, items: Sequence[Presence]) -> list[Transition]:
    """Apply devices' presence messages: a delayed last will or a clean stop takes a device
    offline, a connection brings it online. Messages older than what is known are ignored;
    a device the center has never had a heartbeat from is skipped (its first heartbeat
    follows its connection at once).
    """
    if not items:
        return []
    known = _lock(cur, (i.key for i in items))
    transitions: list[Transition] = []
    for item in sorted(items, key=lambda i: i.received_at):
        row = known.get(item.key)
        if row is None:
            continue
        if row["last_presence_at"] is not None and row["last_presence_at"] > item.received_at:
            continue
        row["last_presence_at"] = item.received_at
        cur.execute(
            "UPDATE device_status SET last_presence = %s, last_presence_at = %s "
            "WHERE facility_id = %s AND device_id = %s",
            (item.presence.reason, item.received_at, *item.key),
        )
        online = item.presence.state == DeviceState.ONLINE.value
        if online and row["state"] == DeviceState.OFFLINE and item.received_at > row["state_since"]:
            change = Transition(
                *item.key, item.received_at, DeviceState.ONLINE, StateReason.CONNECTED
            )
        elif (
            not online
            and row["state"] == DeviceState.ONLINE
            and item.received_at >= row["last_seen_at"]
        ):
            change = Transition(
                *item.key, item.received_at, DeviceState.OFFLINE, StateReason(item.presence.reason)
            )
        else:
            continue
        cur.execute(
            "UPDATE device_status SET state = %s, state_since = %s "
            "WHERE facility_id = %s AND device_id = %s",
            (change.state.value, change.at, *item.key),
        )
        row["state"], row["state_since"] = change.state, change.at
        transitions.append(change)
    _log(cur, transitions)
    return transitions


def mark_silent(cur: Cursor, *, now: datetime, rules: FleetSettings) -> list[Transition]:
    """Take offline every online device silent beyond its grace period.

    Each update is guarded by the `last_seen_at` it was decided on: a heartbeat committed in
    between wins, and the device stays online.
    """
    cur.execute(
        "SELECT facility_id, device_id, last_seen_at, heartbeat_interval_s FROM device_status "
        "WHERE state = 'online' ORDER BY facility_id, device_id"
    )
    transitions: list[Transition] = []
    for facility_id, device_id, last_seen_at, interval_s in cur.fetchall():
        if not is_silent(last_seen_at=last_seen_at, interval_s=interval_s, now=now, rules=rules):
            continue
        cur.execute(
            "UPDATE device_status SET state = 'offline', state_since = %s "
            "WHERE facility_id = %s AND device_id = %s AND state = 'online' "
            "AND last_seen_at = %s",
            (now, facility_id, device_id, last_seen_at),
        )
        if cur.rowcount == 1:
            transitions.append(
                Transition(facility_id, device_id, now, DeviceState.OFFLINE, StateReason.SILENT)
            )
    _log(cur, transitions)
    return transitions


def device_exists(cur: Cursor, *, facility_id: str, device_id: str) -> bool:
    """Whether the center has ever heard from this device."""
    cur.execute(
        "SELECT 1 FROM device_status WHERE facility_id = %s AND device_id = %s",
        (facility_id, device_id),
    )
    return cur.fetchone() is not None


def acknowledge_alert(
    cur: Cursor, *, alert_id: int, actor: str, now: datetime
) -> dict[str, Any] | None:
    """Mark an alert seen by an operator (kept as first acknowledged); None if unknown."""
    cur.execute(
        "UPDATE device_alerts SET acknowledged_at = COALESCE(acknowledged_at, %s), "
        "acknowledged_by = COALESCE(acknowledged_by, %s) WHERE alert_id = %s "
        "RETURNING alert_id",
        (now, actor, alert_id),
    )
    return {"alert_id": alert_id} if cur.fetchone() else None


def acknowledge_device(
    cur: Cursor, *, facility_id: str, device_id: str, actor: str, now: datetime
) -> int | None:
    """Acknowledge every open alert of a device; None if the device is unknown."""
    if not device_exists(cur, facility_id=facility_id, device_id=device_id):
        return None
    cur.execute(
        "UPDATE device_alerts SET acknowledged_at = %s, acknowledged_by = %s "
        "WHERE facility_id = %s AND device_id = %s AND resolved_at IS NULL "
        "AND acknowledged_at IS NULL",
        (now, actor, facility_id, device_id),
    )
    return cur.rowcount


def open_alert_keys(cur: Cursor) -> dict[tuple[str, str, str], tuple[int, str]]:
    """(facility, device, kind) -> (alert id, detail) of every open alert the rules decide.

    The backup's alert is opened and resolved by `welfare recovery` itself (fleet/backup.py),
    never by the monitor's rules.
    """
    cur.execute(
        "SELECT facility_id, device_id, kind, alert_id, detail FROM device_alerts "
        "WHERE resolved_at IS NULL AND kind <> %s",
        (AlertKind.BACKUP_FAILED.value,),
    )
    return {(r[0], r[1], r[2]): (int(r[3]), str(r[4])) for r in cur.fetchall()}


def sync_alerts(
    cur: Cursor, *, wanted: dict[tuple[str, str, str], str], now: datetime
) -> tuple[int, int]:
    """Open alerts whose condition holds, resolve those whose condition cleared.

    An alert stays one row from its opening to its resolution (its detail follows the
    condition); acknowledging does not close it, the condition clearing does.
    Returns (opened, resolved).
    """
    current = open_alert_keys(cur)
    resolve = [alert_id for key, (alert_id, _) in current.items() if key not in wanted]
    if resolve:
        cur.execute(
            "UPDATE device_alerts SET resolved_at = %s, updated_at = %s WHERE alert_id = ANY(%s)",
            (now, now, resolve),
        )
    opened = [(*key, detail) for key, detail in wanted.items() if key not in current]
    if opened:
        cur.executemany(
            "INSERT INTO device_alerts (facility_id, device_id, kind, detail, opened_at, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            [(f, d, k, detail, now, now) for f, d, k, detail in opened],
        )
    changed = [
        (detail, now, current[key][0])
        for key, detail in wanted.items()
        if key in current and current[key][1] != detail
    ]
    if changed:
        cur.executemany(
            "UPDATE device_alerts SET detail = %s, updated_at = %s WHERE alert_id = %s", changed
        )
    return len(opened), len(resolve)


def facts_rows(cur: Cursor, *, skew_since: datetime) -> list[dict[str, Any]]:
    """Every device's latest facts, with the best recent arrival skew (clock fallback)."""
    with cur.connection.cursor(row_factory=dict_row) as dcur:
        dcur.execute(
            "SELECT s.facility_id, s.device_id, s.state, s.state_since, s.last_seen_at, "
            "s.reported_at, s.outbox_pending, s.health, skew.best AS best_arrival_skew_s "
            "FROM device_status s LEFT JOIN ("
            " SELECT facility_id, device_id, max(arrival_skew_s) AS best FROM device_heartbeats"
            " WHERE received_at >= %s GROUP BY facility_id, device_id) skew"
            " USING (facility_id, device_id) ORDER BY s.facility_id, s.device_id",
            (skew_since,),
        )
        return list(dcur.fetchall())
