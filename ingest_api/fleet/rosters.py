"""Which roster version each device should hold: the hook the roster sync fills in.

HOOK (issue 11a, roster sync): the sync will provide the data function that knows which
version each device should hold; `expected_rosters` is the one place the fleet asks, so
wiring it in is one change here. Until then it answers from what the center has recorded as
issued (`device_rosters`, 0003): the newest version issued to each device. A device the
center never issued a roster to has no expectation, and so never a "roster behind" alert.
"""

from __future__ import annotations

from psycopg.rows import dict_row

from ingest_api.core.db import Conn
from ingest_api.fleet.rules import ExpectedRoster


def expected_rosters(conn: Conn) -> dict[tuple[str, str], ExpectedRoster]:
    """(facility, device) -> the roster version it should hold and when it was issued."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT DISTINCT ON (facility_id, device_id) facility_id, device_id, version, "
            "issued_at FROM device_rosters "
            "ORDER BY facility_id, device_id, issued_at DESC, version DESC"
        )
        return {
            (r["facility_id"], r["device_id"]): ExpectedRoster(r["version"], r["issued_at"])
            for r in cur.fetchall()
        }


def versions_behind(conn: Conn) -> dict[tuple[str, str], int]:
    """(facility, device) -> how many versions were issued after the one the device holds.

    Only for devices whose held version the center issued; others are absent (unknown lag).
    """
    rows = conn.execute(
        "SELECT s.facility_id, s.device_id, count(newer.version) "
        "FROM device_status s "
        "JOIN device_rosters held ON held.facility_id = s.facility_id "
        " AND held.device_id = s.device_id AND held.version = s.health->>'roster_version' "
        "LEFT JOIN device_rosters newer ON newer.facility_id = s.facility_id "
        " AND newer.device_id = s.device_id AND newer.issued_at > held.issued_at "
        "GROUP BY s.facility_id, s.device_id"
    ).fetchall()
    return {(str(f), str(d)): int(n) for f, d, n in rows}
