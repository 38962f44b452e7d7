"""The audit log: every access to personal data, every sign-in, every role change.

Rows are appended through the database function `audit_append` (migration 0033), in the
caller's transaction, so no change goes unlogged and no log row outlives a change rolled back.
The service's role cannot UPDATE or DELETE them; each row carries a hash chain that
`verify_chain` recomputes here, independently of the SQL that wrote it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

_LOG = logging.getLogger(__name__)

Action = Literal[
    "view",  # a record of personal data shown
    "search",  # a search over members
    "download",  # a file left the system (with a reason, encrypted)
    "change",  # a record created or changed
    "import",  # a list imported
    "erase",  # a member's personal data erased at their request
    "denied",  # a request outside the caller's scope (answered 404)
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "account",  # an account created, reset, disabled
    "role_change",  # a role, center, programs or grants changed
    "token",  # a service token issued or revoked
]
GENESIS = "0" * 64


def write_audit(
    conn: psycopg.Connection[Any],
    *,
    actor: str,
    action: Action,
    subject: str,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one audit row in the caller's transaction; returns its id."""
    if action == "download" and not (reason and reason.strip()):
        raise ValueError("a download needs a reason")
    row = conn.execute(
        "SELECT audit_append(%s, %s, %s, %s, %s)",
        (actor, action, subject, reason, Jsonb(detail or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _field(value: str | None) -> str:
    """One field of the hashed message: length-prefixed, '-' for NULL (as audit_field does)."""
    return "-" if value is None else f"{len(value)}:{value}"


def row_hash(
    prev: str,
    *,
    audit_id: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    reason: str | None,
    detail_text: str,
) -> str:
    """The hash a row must carry: SHA-256 over the previous hash and the row's fields."""
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    message = "".join(
        _field(v) for v in (prev, str(audit_id), stamp, actor, action, subject, reason, detail_text)
    )
    return hashlib.sha256(message.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify_chain` found."""

    ok: bool
    rows: int
    head: str  # the last row's hash: worth writing down outside the database
    problem: str | None = None
    audit_id: int | None = None  # the first row that does not fit


def verify_chain(conn: psycopg.Connection[Any]) -> ChainReport:
    """Recompute the hash chain over every kept row; name the first row that does not fit.

    Finds an edited row (its hash no longer matches its fields), a removed or inserted row (the
    next row's link breaks) and a chain whose end differs from the recorded end (rows removed
    at the end). Months dropped by the retention are expected: the chain resumes from the hash
    recorded when they were dropped.
    """
    dropped = conn.execute(
        "SELECT last_id, last_hash FROM audit_retention WHERE last_id IS NOT NULL"
        " ORDER BY last_id DESC LIMIT 1"
    ).fetchone()
    expected_prev = str(dropped[1]) if dropped else GENESIS
    after_id = int(dropped[0]) if dropped else 0
    count = 0
    with conn.cursor(name="audit_verify") as cur:
        cur.itersize = 2000
        cur.execute(
            "SELECT audit_id, at, actor, action, subject, reason, detail::text, prev_hash,"
            " row_hash FROM audit_log ORDER BY audit_id"
        )
        for audit_id, at, actor, action, subject, reason, detail, prev, stored in cur:
            count += 1
            if audit_id <= after_id:
                return ChainReport(
                    False, count, expected_prev, "row older than retention", audit_id
                )
            if prev != expected_prev:
                return ChainReport(
                    False,
                    count,
                    expected_prev,
                    "link broken: a row before it was removed or inserted",
                    audit_id,
                )
            computed = row_hash(
                prev,
                audit_id=audit_id,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                detail_text=detail,
            )
            if computed != stored:
                return ChainReport(False, count, expected_prev, "row edited", audit_id)
            expected_prev = stored
    end = conn.execute("SELECT last_hash FROM audit_chain WHERE id = 1").fetchone()
    if end is not None and end[0] != expected_prev:
        return ChainReport(False, count, expected_prev, "rows removed at the end of the chain")
    return ChainReport(True, count, expected_prev)


class AuditRow(BaseModel):
    """One audit row as the auditor reads it."""

    audit_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str | None
    detail: dict[str, Any]


def list_audit(
    conn: psycopg.Connection[Any],
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[AuditRow]:
    """Audit rows, newest first, filtered (subject matches as a prefix)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT audit_id, at, actor, action, subject, reason, detail FROM audit_log"
            " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " AND (%(subject)s::text IS NULL OR starts_with(subject, %(subject)s))"
            " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
            " ORDER BY audit_id DESC LIMIT %(limit)s",
            {
                "actor": actor,
                "action": action,
                "subject": subject,
                "since": since,
                "until": until,
                "limit": limit,
            },
        ).fetchall()
    return [AuditRow(**r) for r in rows]


@dataclass(frozen=True, slots=True)
class Alert:
    """Abnormal use found in the audit log."""

    kind: str  # "bulk_reads" or "off_hours_download"
    actor: str
    window_start: datetime
    detail: dict[str, Any]


def find_alerts(
    conn: psycopg.Connection[Any],
    *,
    since: datetime,
    reads_per_hour: int,
    work_start_hour: int,
    work_end_hour: int,
    timezone: str,
) -> list[Alert]:
    """One account reading more member records in an hour than allowed; off-hours downloads.

    Hours are clock hours; working hours are Monday to Friday in the facilities' time zone.
    """
    rows = conn.execute(
        "SELECT 'bulk_reads', actor, date_trunc('hour', at) AS w,"
        " count(DISTINCT split_part(subject, ':', 2)), NULL::text"
        " FROM audit_log WHERE at >= %(since)s AND action = 'view'"
        " AND starts_with(subject, 'member:')"
        " GROUP BY actor, w HAVING count(DISTINCT split_part(subject, ':', 2)) > %(n)s"
        " UNION ALL"
        " SELECT 'off_hours_download', actor, at, 1, subject FROM audit_log"
        " WHERE at >= %(since)s AND action = 'download' AND ("
        "   extract(isodow FROM at AT TIME ZONE %(tz)s) > 5"
        "   OR extract(hour FROM at AT TIME ZONE %(tz)s) < %(start)s"
        "   OR extract(hour FROM at AT TIME ZONE %(tz)s) >= %(end)s)"
        " ORDER BY 3",
        {
            "since": since,
            "n": reads_per_hour,
            "tz": timezone,
            "start": work_start_hour,
            "end": work_end_hour,
        },
    ).fetchall()
    return [
        Alert(
            kind=r[0],
            actor=r[1],
            window_start=r[2],
            detail={"members": int(r[3])} if r[0] == "bulk_reads" else {"subject": r[4]},
        )
        for r in rows
    ]


def record_alerts(conn: psycopg.Connection[Any], *, alerts: Sequence[Alert]) -> list[Alert]:
    """Store alerts not seen before (and log them); returns the new ones."""
    new: list[Alert] = []
    for alert in alerts:
        cur = conn.execute(
            "INSERT INTO security_alerts (kind, actor, window_start, detail)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (alert.kind, alert.actor, alert.window_start, Jsonb(alert.detail)),
        )
        if cur.rowcount:
            new.append(alert)
            _LOG.warning(
                "abnormal use: %s by %s at %s %s",
                alert.kind,
                alert.actor,
                alert.window_start.isoformat(),
                alert.detail,
            )
    return new


def list_alerts(conn: psycopg.Connection[Any], *, limit: int = 200) -> list[dict[str, Any]]:
    """Recorded alerts, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT alert_id, kind, actor, window_start, detected_at, detail"
            " FROM security_alerts ORDER BY window_start DESC LIMIT %s",
            (limit,),
        ).fetchall()


def drop_expired(conn: psycopg.Connection[Any]) -> list[str]:
    """The retention: drop audit months older than 3 years (the database decides which)."""
    return [str(r[0]) for r in conn.execute("SELECT audit_drop_expired()").fetchall()]


def ensure_partitions(conn: psycopg.Connection[Any], *, now: datetime) -> None:
    """Create this month's and next month's audit partitions ahead of time."""
    conn.execute(
        "SELECT audit_ensure_partition((%(now)s AT TIME ZONE 'UTC')::date),"
        " audit_ensure_partition(((%(now)s AT TIME ZONE 'UTC') + INTERVAL '1 month')::date)",
        {"now": now},
    )
