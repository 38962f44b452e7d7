"""Data functions of the ingest: what one consumer batch writes, in its one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from broker.vocabulary import SyncReason
from ingest_api.core.audit import write_audit
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
            "INSERT INTO dead_letters (topic, reason, detail, payload, consumer, event_id) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (event_id) WHERE event_id IS NOT NULL DO NOTHING",
            [(d.topic, d.reason, d.detail, d.payload, consumer, d.event_id) for d in letters],
        )


# What the database refuses in one event's data (not an outage): a NUL character in text,
# a value out of a column's range, a broken constraint.
REFUSALS = (psycopg.DataError, psycopg.IntegrityError)


def insert_events_isolating(
    cur: psycopg.Cursor[tuple[object, ...]], *, rows: Sequence[EventRow]
) -> tuple[int, list[tuple[EventRow, str]]]:
    """Insert events; rows the database refuses are found by bisection and left out.

    The common path is one statement under one savepoint. Only when the database refuses the
    whole is it split in halves, each under its own savepoint, down to the refused rows:
    about 2·log2(n) statements per bad row instead of one insert per event. Returns how many
    rows were new and the refused rows with the database's message.
    """
    if not rows:
        return 0, []
    try:
        with cur.connection.transaction():
            return insert_events(cur, rows=rows), []
    except REFUSALS as exc:
        if len(rows) == 1:
            return 0, [(rows[0], str(exc).strip()[:300])]
    half = len(rows) // 2
    first_new, first_refused = insert_events_isolating(cur, rows=rows[:half])
    second_new, second_refused = insert_events_isolating(cur, rows=rows[half:])
    return first_new + second_new, first_refused + second_refused


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


def audit_refused_replays(conn: psycopg.Connection[Any], *, reports: Sequence[ParsedSync]) -> None:
    """Audit every replay request a device refused (not signed under its facility's keys):
    someone other than the center's fleet sync wrote to its configuration."""
    for report in reports:
        request = report.request
        detail = request.detail or ""
        if request.reason is SyncReason.REFUSED and detail.startswith("replay "):
            write_audit(
                conn,
                actor=f"device:{request.facility_id}/{request.device_id}",
                action="denied",
                subject=f"replay:{detail.split()[1]}",
                reason=detail,
                detail={"sent_at": request.sent_at.isoformat()},
            )
