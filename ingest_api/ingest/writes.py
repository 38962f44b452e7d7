"""Data functions of the ingest: what one consumer batch writes, in its one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import psycopg

from ingest_api.ingest.const import ROSTER_UNKNOWN
from ingest_api.ingest.validation import DeadLetter, EventRow, ParsedSync

_INSERT_EVENTS = """
INSERT INTO attendance_events (
    event_id, occurred_at, facility_id, device_id, service_date, program_id, member_ref,
    method, outcome, ticket_no, roster_version, visitor, flags, override_reason)
SELECT e.event_id, e.occurred_at, e.facility_id, e.device_id, e.service_date, e.program_id,
       e.member_ref, e.method, e.outcome, e.ticket_no, e.roster_version, e.visitor::jsonb,
       COALESCE(string_to_array(NULLIF(e.flags, ''), ','), '{}'), e.override_reason
FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::text[], %s::date[], %s::text[],
            %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[],
            %s::text[])
     AS e(event_id, occurred_at, facility_id, device_id, service_date, program_id, member_ref,
          method, outcome, ticket_no, roster_version, visitor, flags, override_reason)
ON CONFLICT DO NOTHING
"""


def insert_events(cur: psycopg.Cursor[tuple[object, ...]], *, rows: Sequence[EventRow]) -> int:
    """Insert events, skipping ids already stored; returns how many were new."""
    if not rows:
        return 0
    cur.execute(
        _INSERT_EVENTS,
        (
            [r.event_id for r in rows],
            [r.occurred_at for r in rows],
            [r.facility_id for r in rows],
            [r.device_id for r in rows],
            [r.service_date for r in rows],
            [r.program_id for r in rows],
            [r.member_ref for r in rows],
            [r.method for r in rows],
            [r.outcome for r in rows],
            [r.ticket_no for r in rows],
            [r.roster_version for r in rows],
            [r.visitor for r in rows],
            [",".join(r.flags) for r in rows],
            [r.override_reason for r in rows],
        ),
    )
    return max(cur.rowcount, 0)


def insert_dead_letters(
    cur: psycopg.Cursor[tuple[object, ...]], *, letters: Sequence[DeadLetter], consumer: str
) -> None:
    """Keep every rejected message with its reason and raw bytes."""
    if letters:
        cur.executemany(
            "INSERT INTO dead_letters (topic, reason, detail, payload, consumer) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(d.topic, d.reason, d.detail, d.payload, consumer) for d in letters],
        )


def add_metrics(cur: psycopg.Cursor[tuple[object, ...]], *, counts: Counter[str]) -> None:
    """Add to the consumer's counters in the same transaction as the data."""
    if counts:
        cur.executemany(
            "INSERT INTO ingest_metrics (name, value) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = ingest_metrics.value + EXCLUDED.value",
            sorted(counts.items()),
        )


def flag_unknown_rosters(
    cur: psycopg.Cursor[tuple[object, ...]], *, rows: Sequence[EventRow]
) -> int:
    """Flag events decided with a roster never issued to their device; returns how many."""
    devices = sorted({(r.facility_id, r.device_id) for r in rows})
    if not devices:
        return 0
    cur.execute(
        "SELECT facility_id, device_id, version FROM device_rosters "
        "WHERE (facility_id, device_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([d[0] for d in devices], [d[1] for d in devices]),
    )
    issued: dict[tuple[str, str], set[str]] = {}
    for facility_id, device_id, version in cur.fetchall():
        issued.setdefault((str(facility_id), str(device_id)), set()).add(str(version))
    flagged = 0
    for row in rows:
        versions = issued.get((row.facility_id, row.device_id))
        # Devices the center never sent a roster (loaded locally) are not checked.
        if versions and row.roster_version not in versions:
            row.flags.append(ROSTER_UNKNOWN)
            flagged += 1
    return flagged


def upsert_sync_reports(
    cur: psycopg.Cursor[tuple[object, ...]], *, reports: Sequence[ParsedSync]
) -> None:
    """Keep each device's latest report (in arrival order: device clocks may jump)."""
    if reports:
        cur.executemany(
            "INSERT INTO device_sync_reports (facility_id, device_id, roster_version, "
            "roster_hash, config_version, key_ids, reason, detail, sent_at, received_at, "
            "answered) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp(), false) "
            "ON CONFLICT (facility_id, device_id) DO UPDATE SET "
            "roster_version = EXCLUDED.roster_version, roster_hash = EXCLUDED.roster_hash, "
            "config_version = EXCLUDED.config_version, key_ids = EXCLUDED.key_ids, "
            "reason = EXCLUDED.reason, detail = EXCLUDED.detail, sent_at = EXCLUDED.sent_at, "
            "received_at = EXCLUDED.received_at, answered = false",
            [
                (
                    r.request.facility_id,
                    r.request.device_id,
                    r.request.roster_version,
                    r.request.roster_hash,
                    r.request.config_version,
                    r.request.key_ids,
                    r.request.reason.value,
                    r.request.detail,
                    r.request.sent_at,
                )
                for r in reports
            ],
        )
