"""Read-side data functions of the fleet: what the dashboard, its API and /metrics show.

Reads only: the state and alerts they show were written by the consumer and the monitor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from ingest_api.core.config import FleetSettings
from ingest_api.core.db import Conn
from ingest_api.fleet.const import (
    ALERT_LABELS,
    REASON_LABELS,
    STATE_LABELS,
    AlertKind,
    DeviceState,
)
from ingest_api.fleet.models import (
    AlertView,
    DeviceView,
    FleetView,
    HeartbeatPoint,
    HistoryView,
    StateChange,
    TapsHour,
)
from ingest_api.fleet.monitor import device_facts
from ingest_api.fleet.rosters import expected_rosters, versions_behind
from ingest_api.fleet.rules import backlog_age, clock_offset, is_late, offline_grace, readers_down

_DEVICES = """
SELECT s.facility_id, f.name AS facility_name, s.device_id, s.state, s.state_since,
       s.last_seen_at, s.reported_at, s.outbox_pending, s.health, s.heartbeat_interval_s,
       s.last_presence, NULL::real AS best_arrival_skew_s,
       count(a.alert_id) AS open_alerts,
       count(a.alert_id) FILTER (WHERE a.acknowledged_at IS NULL) AS unacknowledged_alerts
FROM device_status s
LEFT JOIN facilities f USING (facility_id)
LEFT JOIN device_alerts a ON a.facility_id = s.facility_id AND a.device_id = s.device_id
                         AND a.resolved_at IS NULL
WHERE (%(facility_id)s::text IS NULL OR s.facility_id = %(facility_id)s)
  AND (%(device_id)s::text IS NULL OR s.device_id = %(device_id)s)
GROUP BY s.facility_id, f.name, s.device_id
ORDER BY s.facility_id, s.device_id
"""


def _device(
    row: dict[str, Any],
    *,
    now: datetime,
    rules: FleetSettings,
    expected: str | None,
    behind: int | None,
) -> DeviceView:
    """One status row as the dashboard shows it."""
    facts = device_facts(row, None)
    state = DeviceState(row["state"])
    age = backlog_age(facts, now=now)
    interval_s = row["heartbeat_interval_s"]
    return DeviceView(
        facility_id=row["facility_id"],
        facility_name=row["facility_name"],
        device_id=row["device_id"],
        state=state,
        state_label=STATE_LABELS[state],
        state_since=row["state_since"],
        late=state is DeviceState.ONLINE
        and is_late(last_seen_at=row["last_seen_at"], interval_s=interval_s, now=now, rules=rules),
        last_seen_at=row["last_seen_at"],
        offline_after_s=offline_grace(interval_s, rules).total_seconds(),
        outbox_pending=row["outbox_pending"],
        backlog_age_s=age.total_seconds() if age is not None else None,
        roster_version=facts.roster_version,
        expected_roster_version=expected,
        roster_versions_behind=behind,
        software_version=str(row["health"].get("software_version", "?")),
        heartbeat_interval_s=interval_s,
        clock_offset_s=clock_offset(facts),
        cpu_temp_c=row["health"].get("cpu_temp_c"),
        disk_free_mb=facts.disk_free_mb,
        outbox_parked=row["health"].get("outbox_parked"),
        readers_down=readers_down(facts.readers),
        last_presence=row["last_presence"],
        open_alerts=row["open_alerts"],
        unacknowledged_alerts=row["unacknowledged_alerts"],
    )


def devices(
    conn: Conn,
    *,
    now: datetime,
    rules: FleetSettings,
    facility_id: str | None = None,
    device_id: str | None = None,
) -> list[DeviceView]:
    """Every device (or the ones asked for), by facility."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_DEVICES, {"facility_id": facility_id, "device_id": device_id})
        rows = cur.fetchall()
    expected = expected_rosters(conn)
    behind = versions_behind(conn)
    return [
        _device(
            row,
            now=now,
            rules=rules,
            expected=(e.version if (e := expected.get(key)) else None),
            behind=behind.get(key),
        )
        for row in rows
        if (key := (row["facility_id"], row["device_id"]))
    ]


def fleet(conn: Conn, *, now: datetime, rules: FleetSettings) -> FleetView:
    """The fleet page's content: every device and the counts."""
    found = devices(conn, now=now, rules=rules)
    return FleetView(
        at=now,
        online=sum(d.state is DeviceState.ONLINE for d in found),
        offline=sum(d.state is DeviceState.OFFLINE for d in found),
        open_alerts=sum(d.open_alerts for d in found),
        devices=found,
    )


def device(
    conn: Conn, *, facility_id: str, device_id: str, now: datetime, rules: FleetSettings
) -> DeviceView | None:
    """One device, or None if the center has never heard from it."""
    found = devices(conn, now=now, rules=rules, facility_id=facility_id, device_id=device_id)
    return found[0] if found else None


def alerts(
    conn: Conn,
    *,
    open_only: bool = True,
    facility_id: str | None = None,
    device_id: str | None = None,
    limit: int = 500,
) -> list[AlertView]:
    """Alerts, newest first: the open ones, or all (with the resolved) of a device."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT alert_id, facility_id, device_id, kind, detail, opened_at, updated_at, "
            "resolved_at, acknowledged_at, acknowledged_by FROM device_alerts "
            "WHERE (NOT %(open_only)s OR resolved_at IS NULL) "
            "AND (%(facility_id)s::text IS NULL OR facility_id = %(facility_id)s) "
            "AND (%(device_id)s::text IS NULL OR device_id = %(device_id)s) "
            "ORDER BY opened_at DESC, alert_id DESC LIMIT %(limit)s",
            {
                "open_only": open_only,
                "facility_id": facility_id,
                "device_id": device_id,
                "limit": limit,
            },
        )
        rows = cur.fetchall()
    return [AlertView(**r, label=ALERT_LABELS[AlertKind(r["kind"])]) for r in rows]


def alert(conn: Conn, *, alert_id: int) -> AlertView | None:
    """One alert by id, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT alert_id, facility_id, device_id, kind, detail, opened_at, updated_at, "
            "resolved_at, acknowledged_at, acknowledged_by FROM device_alerts "
            "WHERE alert_id = %s",
            (alert_id,),
        )
        row = cur.fetchone()
    return AlertView(**row, label=ALERT_LABELS[AlertKind(row["kind"])]) if row else None


def history(
    conn: Conn, *, facility_id: str, device_id: str, since: datetime, until: datetime
) -> HistoryView:
    """A device's heartbeats (backlog, gaps), taps per hour and state changes in a window."""
    key = {"f": facility_id, "d": device_id, "since": since, "until": until}
    beats = conn.execute(
        "SELECT received_at, outbox_pending, "
        "extract(epoch FROM reported_at - oldest_pending_at)::float8, "
        "extract(epoch FROM received_at - lag(received_at) OVER (ORDER BY received_at))::float8 "
        "FROM device_heartbeats WHERE facility_id = %(f)s AND device_id = %(d)s "
        "AND received_at >= %(since)s AND received_at < %(until)s ORDER BY received_at",
        key,
    ).fetchall()
    taps = conn.execute(
        "SELECT date_trunc('hour', occurred_at) AS hour, "
        "count(*) FILTER (WHERE outcome = 'accepted'), "
        "count(*) FILTER (WHERE outcome <> 'accepted') "
        "FROM attendance_events WHERE facility_id = %(f)s AND device_id = %(d)s "
        "AND occurred_at >= %(since)s AND occurred_at < %(until)s GROUP BY 1 ORDER BY 1",
        key,
    ).fetchall()
    states = conn.execute(
        "SELECT at, state, reason FROM device_state_log "
        "WHERE facility_id = %(f)s AND device_id = %(d)s AND at >= %(since)s AND at < %(until)s "
        "ORDER BY at, id",
        key,
    ).fetchall()
    return HistoryView(
        facility_id=facility_id,
        device_id=device_id,
        since=since,
        until=until,
        heartbeats=[
            HeartbeatPoint(received_at=r, outbox_pending=p, backlog_age_s=age, gap_s=gap)
            for r, p, age, gap in beats
        ],
        taps=[TapsHour(hour=h, accepted=a, refused=x) for h, a, x in taps],
        states=[
            StateChange(
                at=at,
                state=DeviceState(state),
                reason=str(reason),
                label=REASON_LABELS.get(str(reason), str(reason)),  # type: ignore[call-overload]
            )
            for at, state, reason in states
        ],
    )
