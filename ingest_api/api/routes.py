"""Backbone API: service health, daily figures, devices, dead letters."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ingest_api.api.deps import ConnDep, query_error
from ingest_api.db import reads

router = APIRouter()


class FigureRow(BaseModel):
    """Unique persons and person-visits of a facility (program_id null) or one of its programs."""

    facility_id: str
    program_id: str | None
    unique_persons: int
    person_visits: int


@router.get("/healthz")
def healthz(request: Request, conn: ConnDep) -> dict[str, Any]:
    """Liveness of the service, its database and its consumer."""
    conn.execute("SELECT 1")
    consumer = getattr(request.app.state, "consumer", None)
    return {
        "status": "ok",
        "database": "ok",
        "consumer": None
        if consumer is None
        else {"connected": consumer.connected, "messages": consumer.stats.messages},
    }


@router.get("/api/v1/figures/daily", response_model=list[FigureRow])
def figures_daily(
    conn: ConnDep,
    start: Annotated[date, Query(description="First service date (facility local).")],
    end: Annotated[date | None, Query(description="Last service date; default = start.")] = None,
    facility_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = None,
) -> list[dict[str, Any]]:
    """Unique persons (실인원) and person-visits (연인원) over a range of days."""
    last = end or start
    if last < start:
        raise query_error("end", "end is before start")
    if (last - start).days > 366:
        raise query_error("end", "at most one year per request")
    return reads.daily_figures(conn, start=start, end=last, facility_id=facility_id)


@router.get("/api/v1/devices")
def devices(conn: ConnDep) -> list[dict[str, Any]]:
    """Latest health report of every kiosk."""
    return reads.devices(conn)


@router.get("/api/v1/ingest")
def ingest_status(conn: ConnDep) -> dict[str, Any]:
    """Consumer counters and dead letters by reason."""
    return {"metrics": reads.metrics(conn), "dead_letters": reads.dead_letter_summary(conn)}
