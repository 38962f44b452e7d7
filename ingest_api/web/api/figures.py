"""Figures API: the quarterly report (JSON, .xlsx, .csv), any slice of figures, statistics.

Figures are aggregates: any account with `figures.read` sees them, a center's account only its
own center's (`facility_id` defaults to it). The report as a file is a download: a reason is
audited and the file is encrypted with the caller's password. The JSON report is a view of
aggregates (no person in it), not a download. The duplicate-service view is the city's.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import Field

from broker.vocabulary import EntityId
from ingest_api.core.audit import write_audit
from ingest_api.core.deps import (
    ERROR_RESPONSES,
    ConnDep,
    DuplicatesReader,
    FiguresReader,
    FiguresRefresher,
    PoolDep,
    ReportDownloader,
    query_error,
)
from ingest_api.core.downloads import XLSX, ZIP, DownloadRequest, seal
from ingest_api.core.security import Principal
from ingest_api.figures import rollup
from ingest_api.figures.const import DIMS, Dim
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.figures.export import to_csv, to_xlsx
from ingest_api.figures.models import (
    DuplicateService,
    FacilityFigures,
    FigureRow,
    QuarterlyReport,
    Statistics,
)
from ingest_api.figures.reports import build_quarterly_report, facility_figures
from ingest_api.figures.statistics import duplicate_service, statistics

router = APIRouter(prefix="/api/v1/figures", tags=["figures"], responses=ERROR_RESPONSES)
Month = Annotated[str, Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


class ReportDownload(DownloadRequest):
    """Which report, in which format, why, and the password the file opens with."""

    year: int = Field(ge=2000, le=2100)
    quarter: int = Field(ge=1, le=4)
    format: Literal["xlsx", "csv"] = "xlsx"
    facility_id: EntityId | None = None


def facility_for(principal: Principal, facility_id: str | None) -> str | None:
    """The facility a figures request is about: a center's account defaults to its own."""
    if facility_id is None:
        return principal.facility_id
    principal.check_facility(facility_id)
    return facility_id


def _month(text: str) -> date:
    """The first day of a YYYY-MM month."""
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def _months(first: str, last: str) -> tuple[date, date]:
    """A validated month range."""
    lo, hi = _month(first), _month(last)
    if hi < lo:
        raise HTTPException(400, "last_month is before first_month")
    return lo, hi


@router.post("/refresh")
def post_refresh(pool: PoolDep, _: FiguresRefresher) -> dict[str, object]:
    """Bring the rollups up to date now (the service also does so every few seconds).

    Like the background refresher, with the service's own login (TimescaleDB lets only the
    aggregates' owner refresh them); it reads and writes no personal data.
    """
    with pool.connection() as conn:
        result = rollup.refresh(conn)
    return {
        "path": result.path,
        "days": result.days,
        "months": result.months,
        "seconds": round(result.seconds, 3),
    }


@router.get("/report", response_model=QuarterlyReport)
def get_report(
    conn: ConnDep,
    principal: FiguresReader,
    year: Annotated[int, Query(ge=2000, le=2100)],
    quarter: Annotated[int, Query(ge=1, le=4)],
    facility_id: str | None = None,
) -> QuarterlyReport:
    """The quarterly report of a facility, or of the city without facility_id."""
    return _report(conn, facility_for(principal, facility_id), year, quarter)


def _report(conn: ConnDep, facility_id: str | None, year: int, quarter: int) -> QuarterlyReport:
    """Build the report; an unknown facility is a 404."""
    try:
        return build_quarterly_report(conn, facility_id=facility_id, year=year, quarter=quarter)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.post(
    "/report/download",
    response_class=Response,
    responses={
        200: {"content": {XLSX: {}, ZIP: {}}, "description": "The report, encrypted"},
    },
)
def post_report_download(
    conn: ConnDep, principal: ReportDownloader, body: ReportDownload
) -> Response:
    """The quarterly report as a file: the reason is audited, the file opens with the password
    the caller chose (an encrypted .xlsx, or the .csv in an AES zip)."""
    return report_file(conn, principal, body)


def report_file(conn: ConnDep, principal: Principal, body: ReportDownload) -> Response:
    """The report as an encrypted file, its reason audited (the API's and the pages' path)."""
    facility_id = facility_for(principal, body.facility_id)
    report = _report(conn, facility_id, body.year, body.quarter)
    name = f"report_{facility_id or 'city'}_{body.year}Q{body.quarter}.{body.format}"
    content = to_xlsx(report) if body.format == "xlsx" else to_csv(report).encode()
    sealed = seal(name, content, password=body.password)  # before the audit row's lock
    write_audit(
        conn,
        actor=principal.actor,
        action="download",
        subject=f"report:{facility_id or 'city'}:{body.year}-Q{body.quarter}",
        reason=body.reason,
        detail={"format": body.format},
    )
    return sealed.response()


@router.get("/query", response_model=list[FigureRow])
def get_query(
    conn: ConnDep,
    principal: FiguresReader,
    first_month: Month,
    last_month: Month,
    dims: Annotated[str, Query(description="Comma-separated: " + ", ".join(DIMS))] = "",
    facility_id: str | None = None,
    function: str | None = None,
    business_area: str | None = None,
    unit_business: str | None = None,
    program_id: str | None = None,
) -> list[FigureRow]:
    """The three figures of any slice, grouped by any dimensions (exact, never estimated)."""
    lo, hi = _months(first_month, last_month)
    wanted = [d for d in re.split(r"\s*,\s*", dims) if d]
    unknown = [d for d in wanted if d not in DIMS]
    if unknown:
        raise HTTPException(400, f"unknown dimensions: {unknown}")
    scope = Scope(
        facility_id=facility_for(principal, facility_id),
        function=function,
        business_area=business_area,
        unit_business=unit_business,
        program_id=program_id,
    )
    period = Period.months(f"{first_month}..{last_month}", lo, hi)
    dim_list: list[Dim] = wanted  # type: ignore[assignment]
    return compute(conn, periods=[period], dims=dim_list, scope=scope)


@router.get("/statistics", response_model=Statistics)
def get_statistics(
    conn: ConnDep,
    principal: FiguresReader,
    first_month: Month,
    last_month: Month,
    facility_id: str | None = None,
) -> Statistics:
    """Users by gender, age band, neighbourhood, program, and programs per person."""
    lo, hi = _months(first_month, last_month)
    return statistics(
        conn, facility_id=facility_for(principal, facility_id), first_month=lo, last_month=hi
    )


@router.get("/duplicates", response_model=list[DuplicateService])
def get_duplicates(
    conn: ConnDep,
    principal: DuplicatesReader,
    first_month: Month,
    last_month: Month,
    level: Literal["unit_business", "business_area"] = "unit_business",
) -> list[DuplicateService]:
    """People served by the same kind of service at several centers (pseudonymous; audited).

    Only members who consented to provision to the city (`transfer`, not withdrawn) appear.
    """
    principal.check_facility(None)
    lo, hi = _months(first_month, last_month)
    found = duplicate_service(conn, first_month=lo, last_month=hi, level=level)
    write_audit(
        conn,
        actor=principal.actor,
        action="view",
        subject="figures:duplicates",
        detail={"first_month": first_month, "last_month": last_month, "persons": len(found)},
    )
    return found


@router.get("/daily", response_model=list[FacilityFigures])
def get_daily(
    conn: ConnDep,
    principal: FiguresReader,
    start: Annotated[date, Query(description="First service date (facility local).")],
    end: Annotated[date | None, Query(description="Last service date; default = start.")] = None,
    facility_id: Annotated[EntityId | None, Query()] = None,
) -> list[FacilityFigures]:
    """Unique persons (실인원), person-visits (연인원) and cases (건) of each facility and program
    over a range of days, counted by the figures engine like the quarterly report."""
    last = end or start
    if last < start:
        raise query_error("end", "end is before start")
    if (last - start).days > 366:
        raise query_error("end", "at most one year per request")
    return facility_figures(
        conn,
        period=Period(f"{start}..{last}", start, last),
        facility_id=facility_for(principal, facility_id),
    )
