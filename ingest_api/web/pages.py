"""Server-rendered pages for staff and operators (Jinja2 templates, no script needed)."""

from __future__ import annotations

from datetime import date, datetime
from importlib import resources
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ingest_api.core.deps import ConnDep, SettingsDep
from ingest_api.figures.engine import Period
from ingest_api.figures.reports import facility_figures
from ingest_api.ingest import reads
from ingest_api.registry import store

router = APIRouter()
templates = Jinja2Templates(directory=str(resources.files("ingest_api.web") / "templates"))


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    day: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    """A day's figures per center and program (the figures engine's), and the fleet's health."""
    tz = ZoneInfo(settings.timezone)
    shown = day or datetime.now(tz).date()
    programs = {p.program_id: p.name for p in store.list_programs(conn)}
    return templates.TemplateResponse(
        request,
        "overview.html",
        {
            "day": shown,
            "figures": facility_figures(conn, period=Period.day(shown)),
            "programs": programs,
            "devices": reads.devices(conn),
            "tz": tz,
        },
    )
