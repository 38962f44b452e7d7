"""Migration 0070 on a database that already holds meetings: every row is kept, and a second
meeting with the same resident becomes a second record from then on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest_api.core import migrate as migrations
from ingest_api.registry import store
from ingest_api.registry.models import ContactIn


def test_existing_meetings_are_kept_and_a_second_meeting_is_a_new_record(
    pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows from before 0070 stay (each gets an id); then the same code meets again: 2 rows;
    the same meeting sent again: still 2."""
    url: str = pg_server.create_database(f"m_{uuid.uuid4().hex[:12]}")
    every = migrations.available
    monkeypatch.setattr(
        migrations,
        "available",
        lambda *, timescale: [m for m in every(timescale=timescale) if m.version < 70],
    )
    migrations.migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO facilities (facility_id, name) VALUES ('B', '한마음')")
        for code in ("C-OLD-1", "C-OLD-2"):
            conn.execute(
                "INSERT INTO community_contacts (contact_code, facility_id, gender, age_band,"
                " neighbourhood, place, met_at, service_date) VALUES (%s, 'B', 'M', '80-84',"
                " '우만1동', '경로당', '2026-11-02 10:00+09', '2026-11-02')",
                (code,),
            )
    monkeypatch.setattr(migrations, "available", every)
    assert 70 in migrations.migrate(url)
    again = ContactIn(
        contact_code="C-OLD-1",
        facility_id="B",
        gender="M",
        age_band="80-84",
        neighbourhood="우만1동",
        place="놀이터",
        met_at=datetime(2026, 11, 9, 1, 0, tzinfo=UTC),
    )
    with psycopg.connect(url) as conn:
        assert store.register_contact(conn, contact=again) == "inserted"
        assert store.register_contact(conn, contact=again) == "unchanged"
        rows = conn.execute(
            "SELECT contact_id, contact_code, place FROM community_contacts ORDER BY met_at,"
            " contact_code"
        ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [
        ("C-OLD-1", "경로당"),
        ("C-OLD-2", "경로당"),
        ("C-OLD-1", "놀이터"),
    ]
    assert len({r[0] for r in rows}) == 3
