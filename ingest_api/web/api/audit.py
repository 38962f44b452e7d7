"""Audit API for the auditor: the log, abnormal-use alerts, the chain check, an encrypted export.

Reading the audit log is itself audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Response
from pydantic import ConfigDict

from ingest_api.core.audit import (
    AuditRow,
    ChainReport,
    list_alerts,
    list_audit,
    verify_chain,
    write_audit,
)
from ingest_api.core.deps import ERROR_RESPONSES, AuditReader, ConnDep
from ingest_api.core.downloads import DownloadRequest, seal, table_csv

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)


class AuditExport(DownloadRequest):
    """An export of the audit log: filters, a reason and the file's password."""

    model_config = ConfigDict(extra="ignore")  # the page's form also carries its CSRF token

    actor: str = ""
    action: str = ""
    subject: str = ""


@router.get("", response_model=list[AuditRow])
def get_audit(
    conn: ConnDep,
    principal: AuditReader,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=20)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AuditRow]:
    """Audit rows, newest first (subject matches as a prefix)."""
    rows = list_audit(
        conn, actor=actor, action=action, subject=subject, since=since, until=until, limit=limit
    )
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject="audit:log",
        detail={"actor": actor, "action": action, "subject": subject, "rows": len(rows)},
    )
    return rows


@router.get("/alerts")
def get_alerts(conn: ConnDep, _: AuditReader) -> list[dict[str, Any]]:
    """Abnormal use the service found (bulk reads by one account, off-hours downloads)."""
    return list_alerts(conn)


@router.get("/verify")
def get_verify(conn: ConnDep, _: AuditReader) -> dict[str, Any]:
    """Recompute the hash chain: is every kept row as it was written?"""
    report: ChainReport = verify_chain(conn)
    return {
        "ok": report.ok,
        "rows": report.rows,
        "head": report.head,
        "problem": report.problem,
        "audit_id": report.audit_id,
    }


@router.post(
    "/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "AES-256 zip"}},
)
def post_export(
    conn: ConnDep, principal: AuditReader, body: Annotated[AuditExport, Form()]
) -> Response:
    """The audit log as CSV in an AES zip (a download: reason audited, password chosen)."""
    rows = list_audit(
        conn,
        actor=body.actor or None,
        action=body.action or None,
        subject=body.subject or None,
        limit=1_000_000,
    )
    table = [
        [
            r.audit_id,
            r.at.astimezone(UTC).isoformat(),
            r.actor,
            r.action,
            r.subject,
            r.reason or "",
            r.detail,
        ]
        for r in rows
    ]
    content = table_csv(("audit_id", "at", "actor", "action", "subject", "reason", "detail"), table)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
    download = seal(f"audit_{stamp}.csv", content, password=body.password)
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject="audit:log",
        reason=body.reason,
        detail={
            "rows": len(rows),
            "actor": body.actor,
            "action": body.action,
            "subject": body.subject,
        },
    )
    return download.response()
