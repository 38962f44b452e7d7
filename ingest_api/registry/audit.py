"""The audit log of personal-data access: who, what, when, and why for downloads."""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

Action = Literal["view", "download", "change", "import"]


def write_audit(
    conn: psycopg.Connection[Any],
    *,
    actor: str,
    action: Action,
    subject: str,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row (in the caller's transaction, so no change goes unlogged)."""
    if action == "download" and not (reason and reason.strip()):
        raise ValueError("a download needs a reason")
    conn.execute(
        "INSERT INTO audit_log (actor, action, subject, reason, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (actor, action, subject, reason, Jsonb(detail or {})),
    )
