"""The operator dashboard and the fleet API, for operators only (fleet.read, fleet.operate).

Pages (Korean, server-rendered, refreshing themselves with htmx): `/fleet`, the fleet by
facility, and `/fleet/devices/{facility}/{device}`, one kiosk with its history charts (uPlot).
API: `/api/v1/fleet…` — the same content as JSON, and the operators' one action,
acknowledging alerts (an unknown alert or device answers 404). GET requests never write.
Nothing here shows personal data: devices, counts, versions and times only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from broker.const import ID_PATTERN
from ingest_api.core.deps import (
    ERROR_RESPONSES,
    ConnDep,
    FleetOperator,
    FleetReader,
    SettingsDep,
)
from ingest_api.core.security import Permission, Principal
from ingest_api.fleet import reads, store
from ingest_api.fleet.models import (
    AcknowledgedOut,
    AlertView,
    DeviceView,
    FleetView,
    HistoryView,
)

# Every route takes FleetReader (or FleetOperator): operators only, no personal data shown.
router = APIRouter(responses=ERROR_RESPONSES)
templates = Jinja2Templates(directory=str(resources.files("ingest_api.web") / "templates"))
FacilityId = Annotated[str, Path(pattern=ID_PATTERN, description="Facility id")]
DeviceId = Annotated[str, Path(pattern=ID_PATTERN, description="Device id")]
Hours = Annotated[int, Query(ge=1, le=24 * 31, description="How many hours back")]
# The pages poll this often; the history charts less often (they change slowly).
REFRESH_S = 5
CHART_REFRESH_S = 30


def _now() -> datetime:
    """The server's time (the consumer and the monitor use the same clock)."""
    return datetime.now(UTC)


def _unknown_device(facility_id: str, device_id: str) -> HTTPException:
    """The 404 of a device the center has never heard from."""
    return HTTPException(404, f"unknown device {facility_id}/{device_id}")


def _known_device(
    conn: ConnDep, settings: SettingsDep, facility_id: str, device_id: str, now: datetime
) -> DeviceView:
    """The device as shown now, or the 404 of a device never heard from."""
    found = reads.device(
        conn, facility_id=facility_id, device_id=device_id, now=now, rules=settings.fleet
    )
    if found is None:
        raise _unknown_device(facility_id, device_id)
    return found


def _display(settings: SettingsDep) -> dict[str, Any]:
    """Helpers the templates use to show times in the facilities' zone."""
    tz = ZoneInfo(settings.timezone)

    def when(at: datetime | None) -> str:
        """A time as operators read it."""
        return at.astimezone(tz).strftime("%m-%d %H:%M:%S") if at else "—"

    def ago(seconds: float | None) -> str:
        """A duration, short."""
        if seconds is None:
            return "—"
        seconds = max(seconds, 0)
        if seconds < 90:
            return f"{seconds:.0f}초"
        if seconds < 5400:
            return f"{seconds / 60:.0f}분"
        if seconds < 172_800:
            return f"{seconds / 3600:.1f}시간"
        return f"{seconds / 86400:.0f}일"

    return {"when": when, "ago": ago, "refresh_s": REFRESH_S, "tz": settings.timezone}


def _by_facility(view: FleetView) -> list[tuple[str, str | None, list[DeviceView]]]:
    """The devices grouped by facility, in order."""
    groups: dict[str, tuple[str | None, list[DeviceView]]] = {}
    for device in view.devices:
        groups.setdefault(device.facility_id, (device.facility_name, []))[1].append(device)
    return [(f, name, found) for f, (name, found) in groups.items()]


# -- pages -----------------------------------------------------------------------------------


@router.get("/fleet", response_class=HTMLResponse, include_in_schema=False)
def fleet_page(
    request: Request, conn: ConnDep, settings: SettingsDep, operator: FleetReader
) -> HTMLResponse:
    """The fleet by facility: state, last heard, backlog, roster, software, open alerts."""
    return templates.TemplateResponse(
        request, "fleet.html", _fleet_context(conn, settings, operator)
    )


@router.get("/fleet/table", response_class=HTMLResponse, include_in_schema=False)
def fleet_table(
    request: Request, conn: ConnDep, settings: SettingsDep, operator: FleetReader
) -> HTMLResponse:
    """The fleet page's content alone (what the page polls)."""
    return templates.TemplateResponse(
        request, "fleet_table.html", _fleet_context(conn, settings, operator)
    )


def _fleet_context(conn: ConnDep, settings: SettingsDep, operator: Principal) -> dict[str, Any]:
    """What the fleet page shows."""
    view = reads.fleet(conn, now=_now(), rules=settings.fleet)
    return {
        **_display(settings),
        "principal": operator,
        "can_acknowledge": operator.can(Permission.FLEET_OPERATE),
        "view": view,
        "facilities": _by_facility(view),
        "alerts": reads.alerts(conn),
    }


@router.get(
    "/fleet/devices/{facility_id}/{device_id}",
    response_class=HTMLResponse,
    include_in_schema=False,  # pages, like the others: the API below is the schema's
)
def device_page(
    request: Request,
    facility_id: FacilityId,
    device_id: DeviceId,
    conn: ConnDep,
    settings: SettingsDep,
    operator: FleetReader,
) -> HTMLResponse:
    """One kiosk: its state and alerts, and charts of its backlog, heartbeats and taps."""
    try:
        context = _device_context(conn, settings, facility_id, device_id, operator)
    except HTTPException as exc:
        return _missing(request, exc, operator)
    return templates.TemplateResponse(
        request, "fleet_device.html", {**context, "chart_refresh_s": CHART_REFRESH_S}
    )


def _missing(request: Request, exc: HTTPException, operator: Principal) -> HTMLResponse:
    """The page of a device the center has never heard from."""
    return templates.TemplateResponse(
        request,
        "fleet_missing.html",
        {"detail": exc.detail, "principal": operator},
        status_code=exc.status_code,
    )


@router.get(
    "/fleet/devices/{facility_id}/{device_id}/panel",
    response_class=HTMLResponse,
    include_in_schema=False,  # pages, like the others: the API below is the schema's
)
def device_panel(
    request: Request,
    facility_id: FacilityId,
    device_id: DeviceId,
    conn: ConnDep,
    settings: SettingsDep,
    operator: FleetReader,
) -> HTMLResponse:
    """The device page's summary and alerts alone (what the page polls)."""
    try:
        context = _device_context(conn, settings, facility_id, device_id, operator)
    except HTTPException as exc:
        return _missing(request, exc, operator)
    return templates.TemplateResponse(request, "fleet_device_panel.html", context)


def _device_context(
    conn: ConnDep, settings: SettingsDep, facility_id: str, device_id: str, operator: Principal
) -> dict[str, Any]:
    """What the device page shows; 404 for a device never heard from."""
    now = _now()
    found = _known_device(conn, settings, facility_id, device_id, now)
    return {
        **_display(settings),
        "principal": operator,
        "can_acknowledge": operator.can(Permission.FLEET_OPERATE),
        "now_s": now.timestamp(),
        "device": found,
        "alerts": reads.alerts(
            conn, open_only=False, facility_id=facility_id, device_id=device_id, limit=20
        ),
        "states": reads.history(
            conn,
            facility_id=facility_id,
            device_id=device_id,
            since=now - timedelta(days=7),
            until=now + timedelta(minutes=1),
        ).states[-15:],
    }


# -- API -------------------------------------------------------------------------------------


@router.get("/api/v1/fleet", response_model=FleetView, tags=["fleet"])
def get_fleet(conn: ConnDep, settings: SettingsDep, _operator: FleetReader) -> FleetView:
    """Every kiosk with its state, backlog, roster and open alerts."""
    return reads.fleet(conn, now=_now(), rules=settings.fleet)


@router.get("/api/v1/fleet/alerts", response_model=list[AlertView], tags=["fleet"])
def get_alerts(
    conn: ConnDep,
    _operator: FleetReader,
    open_only: Annotated[bool, Query(alias="open", description="Only unresolved")] = True,
) -> list[AlertView]:
    """Alerts, newest first."""
    return reads.alerts(conn, open_only=open_only)


@router.get(
    "/api/v1/fleet/devices/{facility_id}/{device_id}", response_model=DeviceView, tags=["fleet"]
)
def get_device(
    facility_id: FacilityId,
    device_id: DeviceId,
    conn: ConnDep,
    settings: SettingsDep,
    _operator: FleetReader,
) -> DeviceView:
    """One kiosk (404 if the center has never heard from it)."""
    return _known_device(conn, settings, facility_id, device_id, _now())


@router.get(
    "/api/v1/fleet/devices/{facility_id}/{device_id}/history",
    response_model=HistoryView,
    tags=["fleet"],
)
def get_history(
    facility_id: FacilityId,
    device_id: DeviceId,
    conn: ConnDep,
    settings: SettingsDep,
    _operator: FleetReader,
    hours: Hours = 24,
) -> HistoryView:
    """A kiosk's heartbeats (backlog, gaps), taps per hour and state changes."""
    now = _now()
    _known_device(conn, settings, facility_id, device_id, now)
    return reads.history(
        conn,
        facility_id=facility_id,
        device_id=device_id,
        since=now - timedelta(hours=hours),
        until=now + timedelta(minutes=1),
    )


@router.post(
    "/api/v1/fleet/alerts/{alert_id}/acknowledge", response_model=AlertView, tags=["fleet"]
)
def acknowledge_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**63 - 1)], operator: FleetOperator, conn: ConnDep
) -> AlertView:
    """An operator has seen this alert (it stays open until its condition clears)."""
    actor = operator.actor
    with conn.cursor() as cur:
        if store.acknowledge_alert(cur, alert_id=alert_id, actor=actor, now=_now()) is None:
            raise HTTPException(404, f"unknown alert {alert_id}")
    found = reads.alert(conn, alert_id=alert_id)
    assert found is not None
    return found


@router.post(
    "/api/v1/fleet/devices/{facility_id}/{device_id}/acknowledge",
    response_model=AcknowledgedOut,
    tags=["fleet"],
)
def acknowledge_device(
    facility_id: FacilityId, device_id: DeviceId, operator: FleetOperator, conn: ConnDep
) -> AcknowledgedOut:
    """An operator has seen every open alert of this kiosk."""
    with conn.cursor() as cur:
        count = store.acknowledge_device(
            cur, facility_id=facility_id, device_id=device_id, actor=operator.actor, now=_now()
        )
    if count is None:
        raise _unknown_device(facility_id, device_id)
    return AcknowledgedOut(acknowledged=count)
