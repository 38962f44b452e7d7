"""The fleet registry: provisioned kiosks, the programs each serves, and their roster state.

A device is registered by `welfare device add` (which also writes its broker account); staff
change its programs and settings through the API. What a device holds comes from its own
reports on `…/sync`; `expected_roster_versions` and `devices_behind` tell the operator
dashboard which kiosks do not hold the roster the center built for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from ingest_api.core.db import Conn
from ingest_api.registry.models import Device, DeviceIn


class DeviceError(ValueError):
    """A device write the registry refuses (unknown facility, program of another facility)."""


_DEVICE_SELECT = """
SELECT d.facility_id, d.device_id, d.label, d.health_interval_s, d.resend_after_s, d.created_at,
       coalesce((SELECT array_agg(program_id ORDER BY program_id) FROM device_programs p
                 WHERE (p.facility_id, p.device_id) = (d.facility_id, d.device_id)), '{}')
           AS program_ids,
       s.latest_version, s.sent_version,
       r.roster_version AS held_version, r.received_at AS reported_at,
       r.reason AS report_reason, r.detail AS report_detail,
       coalesce(r.key_ids, '{}') AS key_ids
FROM devices d
LEFT JOIN device_roster_state s USING (facility_id, device_id)
LEFT JOIN device_sync_reports r USING (facility_id, device_id)
"""


def _device(row: dict[str, Any]) -> Device:
    """A Device from a row of _DEVICE_SELECT."""
    latest = row["latest_version"]
    return Device(
        **row,
        behind=latest is not None and row["held_version"] != latest,
    )


def _check_programs(conn: Conn, *, facility_id: str, program_ids: Sequence[str]) -> None:
    """Every program exists and belongs to the device's facility."""
    found = {
        str(r[0]): str(r[1])
        for r in conn.execute(
            "SELECT program_id, facility_id FROM programs WHERE program_id = ANY(%s)",
            (list(program_ids),),
        )
    }
    for program_id in program_ids:
        if program_id not in found:
            raise DeviceError(f"unknown program {program_id!r}")
        if found[program_id] != facility_id:
            raise DeviceError(
                f"program {program_id} belongs to facility {found[program_id]}, not {facility_id}"
            )


def register_device(conn: Conn, *, facility_id: str, device_id: str, device: DeviceIn) -> bool:
    """Create or update a device and the programs it serves; whether it is new."""
    if (
        conn.execute("SELECT 1 FROM facilities WHERE facility_id = %s", (facility_id,)).fetchone()
        is None
    ):
        raise DeviceError(f"unknown facility {facility_id!r}")
    _check_programs(conn, facility_id=facility_id, program_ids=device.program_ids)
    row = conn.execute(
        "INSERT INTO devices (facility_id, device_id, label, health_interval_s, resend_after_s) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (facility_id, device_id) DO UPDATE SET "
        "label = EXCLUDED.label, health_interval_s = EXCLUDED.health_interval_s, "
        "resend_after_s = EXCLUDED.resend_after_s RETURNING (xmax = 0)",
        (facility_id, device_id, device.label, device.health_interval_s, device.resend_after_s),
    ).fetchone()
    _set_programs(conn, facility_id=facility_id, device_id=device_id, ids=device.program_ids)
    return bool(row and row[0])


def update_device(conn: Conn, *, facility_id: str, device_id: str, device: DeviceIn) -> None:
    """Change an existing device (LookupError when it is not registered)."""
    if get_device(conn, facility_id=facility_id, device_id=device_id) is None:
        raise LookupError(f"unknown device {facility_id}/{device_id}")
    register_device(conn, facility_id=facility_id, device_id=device_id, device=device)


def _set_programs(conn: Conn, *, facility_id: str, device_id: str, ids: Sequence[str]) -> None:
    """Make the device's programs exactly `ids` (touching nothing when they already are)."""
    conn.execute(
        "DELETE FROM device_programs WHERE facility_id = %s AND device_id = %s "
        "AND NOT (program_id = ANY(%s))",
        (facility_id, device_id, list(ids)),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO device_programs (facility_id, device_id, program_id) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(facility_id, device_id, p) for p in ids],
        )


def remove_device(conn: Conn, *, facility_id: str, device_id: str) -> bool:
    """Forget a device (its events stay); whether it was registered."""
    cur = conn.execute(
        "DELETE FROM devices WHERE facility_id = %s AND device_id = %s", (facility_id, device_id)
    )
    conn.execute(
        "DELETE FROM device_sync_reports WHERE facility_id = %s AND device_id = %s",
        (facility_id, device_id),
    )
    return cur.rowcount > 0


def get_device(conn: Conn, *, facility_id: str, device_id: str) -> Device | None:
    """One device with its sync state, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            _DEVICE_SELECT + " WHERE d.facility_id = %s AND d.device_id = %s",
            (facility_id, device_id),
        ).fetchone()
    return _device(row) if row else None


def list_devices(conn: Conn, *, facility_id: str | None = None) -> list[Device]:
    """Every device (of one facility), with its sync state."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _DEVICE_SELECT + " WHERE %s::text IS NULL OR d.facility_id = %s "
            "ORDER BY d.facility_id, d.device_id",
            (facility_id, facility_id),
        ).fetchall()
    return [_device(r) for r in rows]


def devices_behind(conn: Conn) -> list[Device]:
    """Devices that do not report holding the roster the center built for them last."""
    return [d for d in list_devices(conn) if d.behind]


def expected_roster_versions(conn: Conn) -> dict[tuple[str, str], str | None]:
    """(facility, device) -> the roster version the device should hold (the operator view's
    "expected version"; None until the center has built one)."""
    return {
        (str(r[0]), str(r[1])): r[2]
        for r in conn.execute(
            "SELECT d.facility_id, d.device_id, s.latest_version FROM devices d "
            "LEFT JOIN device_roster_state s USING (facility_id, device_id)"
        )
    }


def request_resync(conn: Conn, *, facility_id: str, device_id: str) -> None:
    """Send the device its whole roster again (LookupError for an unknown device)."""
    if get_device(conn, facility_id=facility_id, device_id=device_id) is None:
        raise LookupError(f"unknown device {facility_id}/{device_id}")
    conn.execute(
        "UPDATE device_roster_state SET latest_hash = NULL, sent_version = NULL, "
        "config_version = NULL WHERE facility_id = %s AND device_id = %s",
        (facility_id, device_id),
    )
    conn.execute("INSERT INTO fleet_dirty (facility_id) VALUES (%s)", (facility_id,))
