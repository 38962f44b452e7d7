"""Server-rendered pages for staff, operators and auditors (Jinja2 templates, no script needed).

Every page needs a session; without one it sends the browser to the sign-in page and back.
The overview shows aggregates only, never a person.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ingest_api.core.audit import list_alerts, list_audit, verify_chain, write_audit
from ingest_api.core.deps import AuditReader, ConnDep, SettingsDep, SignedIn
from ingest_api.core.security import Permission
from ingest_api.figures.engine import Period
from ingest_api.figures.reports import facility_figures
from ingest_api.ingest import reads
from ingest_api.registry import store
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)

ACTION_LABELS = {
    "view": "조회",
    "search": "검색",
    "download": "다운로드",
    "change": "변경",
    "import": "일괄등록",
    "erase": "삭제(파기)",
    "denied": "거부(범위 밖)",
    "sign_in": "로그인",
    "sign_in_failed": "로그인 실패",
    "sign_out": "로그아웃",
    "account": "계정",
    "role_change": "권한 변경",
    "token": "토큰",
}
ALERT_LABELS = {"bulk_reads": "대량 조회", "off_hours_download": "업무시간 외 다운로드"}


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: SignedIn,
    day: Annotated[date | None, Query()] = None,
) -> Response:
    """A day's figures per center and program (the figures engine's), and the fleet's health.

    Each part only for who may see it; a center's account sees its own center's figures.
    """
    if principal.must_change_password:
        return RedirectResponse("/account/password", 303)
    tz = ZoneInfo(settings.timezone)
    shown = day or datetime.now(tz).date()
    figures = None
    programs: dict[str, str] = {}
    if principal.can(Permission.FIGURES_READ):
        programs = {
            p.program_id: p.name
            for p in store.list_programs(conn, facility_id=principal.facility_id)
        }
        figures = facility_figures(
            conn, period=Period.day(shown), facility_id=principal.facility_id
        )
    devices = reads.devices(conn) if principal.can(Permission.FLEET_READ) else None
    return templates.TemplateResponse(
        request,
        "overview.html",
        {
            **page_context(principal),
            "day": shown,
            "figures": figures,
            "programs": programs,
            "devices": devices,
            "tz": tz,
            "audit_link": principal.can(Permission.AUDIT_READ),
        },
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: AuditReader,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    verify: bool = False,
) -> HTMLResponse:
    """The audit log for the auditor: filters, alerts, an encrypted export, and on request the
    chain check (it reads every kept row, so it runs only when asked)."""
    filters = {"actor": actor or None, "action": action or None, "subject": subject or None}
    rows = list_audit(
        conn, actor=filters["actor"], action=filters["action"], subject=filters["subject"]
    )
    chain = verify_chain(conn) if verify else None
    alerts = list_alerts(conn)
    write_audit(conn, actor=principal.actor, action="view", subject="audit:log", detail=filters)
    return templates.TemplateResponse(
        request,
        "audit.html",
        {
            **page_context(principal),
            "rows": rows,
            "chain": chain,
            "alerts": alerts,
            "filters": filters,
            "tz": ZoneInfo(settings.timezone),
            "action_labels": ACTION_LABELS,
            "alert_labels": ALERT_LABELS,
            "since": datetime.now(UTC) - timedelta(days=7),
        },
    )
