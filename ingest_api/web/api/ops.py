"""Operations API: service health, the fleet's last health reports, the ingest's counters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ingest_api.core.deps import ERROR_RESPONSES, ConnDep, FleetReader, Public
from ingest_api.ingest import reads

router = APIRouter(tags=["operations"], responses=ERROR_RESPONSES)


@router.get("/healthz")
def healthz(request: Request, conn: ConnDep, _: Public) -> dict[str, Any]:
    """Liveness of the service, its database and its consumer (public: no data in it)."""
    conn.execute("SELECT 1")
    consumer = getattr(request.app.state, "consumer", None)
    return {
        "status": "ok",
        "database": "ok",
        "consumer": None
        if consumer is None
        else {"connected": consumer.connected, "messages": consumer.stats.messages},
    }


@router.get("/api/v1/devices")
def devices(conn: ConnDep, _: FleetReader) -> list[dict[str, Any]]:
    """Latest health report of every kiosk."""
    return reads.devices(conn)


@router.get("/api/v1/ingest")
def ingest_status(conn: ConnDep, _: FleetReader) -> dict[str, Any]:
    """Consumer counters and dead letters by reason."""
    return {"metrics": reads.metrics(conn), "dead_letters": reads.dead_letter_summary(conn)}
