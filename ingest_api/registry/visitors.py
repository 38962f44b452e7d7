"""Which program a facility's one-off visitors count under (sent to its kiosks)."""

from __future__ import annotations

from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


def set_visitor_program(conn: Conn, *, facility_id: str, program_id: str | None) -> None:
    """Make `program_id` the facility's visitor program (None: visitors count under none)."""
    if program_id is None:
        conn.execute("DELETE FROM facility_visitor_programs WHERE facility_id = %s", (facility_id,))
        return
    conn.execute(
        "INSERT INTO facility_visitor_programs (facility_id, program_id) VALUES (%s, %s) "
        "ON CONFLICT (facility_id) DO UPDATE SET program_id = EXCLUDED.program_id",
        (facility_id, program_id),
    )


def visitor_program(conn: Conn, *, facility_id: str) -> str | None:
    """The facility's visitor program, if it has one."""
    row = conn.execute(
        "SELECT program_id FROM facility_visitor_programs WHERE facility_id = %s", (facility_id,)
    ).fetchone()
    return str(row[0]) if row else None
