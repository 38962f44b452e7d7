"""The meal hall, live, for staff and managers (and the city, per center).

`/mealhall` (figures.read): each meal program's sittings today — served against capacity,
tickets handed out, refused taps by reason — refreshed by htmx polling `/mealhall/live` every
few seconds (aggregates only: no person), and the meals the city subsidises by day of the
month and by month. `/mealhall/refusals` (members.read) lists the refused taps with member
numbers, on request, and is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from broker.const import ID_PATTERN
from ingest_api.core.audit import write_audit
from ingest_api.core.db import Conn
from ingest_api.core.deps import ConnDep, FiguresReader, MembersReader, SettingsDep
from ingest_api.core.security import Permission, Principal
from ingest_api.figures.meals import (
    OUTCOME_LABELS,
    double_serves,
    local_today,
    meal_counts,
    refusals,
    sittings_now,
)
from ingest_api.registry import store
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)
FacilityQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
DayQuery = Annotated[date | None, Query()]


def _facility(conn: Conn, principal: Principal, facility_id: str | None) -> str:
    """The center shown: one's own; the city's accounts pick one (the first by default)."""
    chosen = facility_id or principal.facility_id
    if chosen is None:
        facilities = store.list_facilities(conn)
        if not facilities:
            raise HTTPException(404, "등록된 기관이 없습니다.")
        chosen = facilities[0].facility_id
    if not principal.sees_facility(chosen):
        raise HTTPException(403, "다른 기관의 자료에는 접근할 수 없습니다")
    return chosen


def _live(
    conn: Conn, settings: SettingsDep, principal: Principal, facility_id: str, day: date
) -> dict[str, Any]:
    """What the live part shows (aggregates only)."""
    return {
        **page_context(principal),
        "facility_id": facility_id,
        "day": day,
        "sittings": sittings_now(
            conn, facility_id=facility_id, day=day, timezone=settings.timezone
        ),
        "labels": OUTCOME_LABELS,
        "refresh_s": settings.followup.meal_hall_refresh_s,
        "is_today": day == local_today(settings.timezone),
    }


@router.get("/mealhall", response_class=HTMLResponse)
def mealhall_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: FiguresReader,
    facility_id: FacilityQuery = None,
    day: DayQuery = None,
) -> HTMLResponse:
    """The meal hall now, and the meals counted by day and month."""
    facility = _facility(conn, principal, facility_id)
    shown = day or local_today(settings.timezone)
    counts = meal_counts(conn, facility_id=facility, month=shown.replace(day=1), until=shown)
    return templates.TemplateResponse(
        request,
        "mealhall.html",
        {
            **_live(conn, settings, principal, facility, shown),
            "counts": counts,
            "facilities": store.list_facilities(conn) if principal.facility_id is None else [],
            "can_see_refusals": principal.can(Permission.MEMBERS_READ),
        },
    )


@router.get("/mealhall/live", response_class=HTMLResponse)
def mealhall_live(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: FiguresReader,
    facility_id: FacilityQuery = None,
    day: DayQuery = None,
) -> HTMLResponse:
    """The sittings alone (what the page polls)."""
    facility = _facility(conn, principal, facility_id)
    shown = day or local_today(settings.timezone)
    return templates.TemplateResponse(
        request, "mealhall_live.html", _live(conn, settings, principal, facility, shown)
    )


@router.get("/mealhall/refusals", response_class=HTMLResponse)
def mealhall_refusals(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: MembersReader,
    facility_id: FacilityQuery = None,
    day: DayQuery = None,
) -> HTMLResponse:
    """The day's refused taps with member numbers (to look at: a lost card, a new member)."""
    facility = _facility(conn, principal, facility_id)
    shown = day or local_today(settings.timezone)
    found = refusals(conn, facility_id=facility, day=shown, only_programs=principal.program_ids)
    twice = double_serves(
        conn, facility_id=facility, day=shown, only_programs=principal.program_ids
    )
    page = templates.TemplateResponse(
        request,
        "mealhall_refusals.html",
        {
            **page_context(principal),
            "refusals": found,
            "double_serves": twice,
            "tz": ZoneInfo(settings.timezone),
        },
    )
    write_audit(  # last: the audit chain's lock is held until the commit
        conn,
        actor=principal.actor,
        action="view",
        subject=f"mealhall:{facility}:{shown}",
        detail={
            "refusals": len(found),
            "double_serves": len(twice),
            "members": sorted(
                {r.member_ref for r in found if r.member_ref} | {d.member_ref for d in twice}
            ),
        },
    )
    return page
