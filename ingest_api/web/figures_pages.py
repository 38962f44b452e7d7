"""Figures people can read: a program's, team's, center's or the city's months and quarters.

`/figures` (figures.read): 실인원 / 연인원 / 건 by month with the quarters and the year, against
the yearly target, as a table and charts (uPlot), and the quarterly report in the city's form
as an encrypted download with a typed reason. `/figures/statistics`: users by gender, age
band, neighbourhood and program, programs per person. `/figures/duplicates` (the city's
administrator only): people served by the same kind of service at more than one center,
pseudonymous, audited. Every number comes from the figures engine (ingest_api/figures/engine.py)
— the same counting as the report and the API — and none of these pages shows a person.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from broker.const import ID_PATTERN
from ingest_api.core.audit import write_audit
from ingest_api.core.db import Conn
from ingest_api.core.deps import (
    ConnDep,
    DuplicatesReader,
    FiguresReader,
    ReportDownloader,
    SettingsDep,
)
from ingest_api.core.downloads import MIN_FILE_PASSWORD
from ingest_api.core.security import Permission, Principal
from ingest_api.figures.engine import Period, Scope, compute, month_end
from ingest_api.figures.models import Figures, Statistics
from ingest_api.figures.reports import total_target
from ingest_api.figures.statistics import duplicate_service, statistics
from ingest_api.registry import store
from ingest_api.registry.models import ProgramWithTargets, Targets
from ingest_api.web.api.figures import ReportDownload, report_file
from ingest_api.web.followup import download_errors
from ingest_api.web.guard import templates
from ingest_api.web.signin import page_context

router = APIRouter(include_in_schema=False)
Level = Literal["facility", "program", "team", "city"]
LEVELS: Final[dict[str, str]] = {
    "facility": "기관",
    "team": "팀",
    "program": "프로그램",
    "city": "시 전체",
}
FIGURES: Final = (("unique_persons", "실인원"), ("person_visits", "연인원"), ("cases", "건"))
FacilityQuery = Annotated[str | None, Query(pattern=ID_PATTERN)]
Year = Annotated[int | None, Query(ge=2000, le=2100)]
MonthText = Annotated[str | None, Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")]


@dataclass(frozen=True, slots=True)
class Line:
    """One row of the figures table: a month, a quarter or the year, against the target."""

    label: str
    kind: str  # month, quarter, year
    figures: Figures
    target: dict[str, float | None]  # the target of the period (yearly target pro rata)

    def rate(self, name: str) -> float | None:
        """Achievement of the period's share of the target, in percent."""
        goal = self.target.get(name)
        value = getattr(self.figures, name)
        return round(100 * value / goal, 1) if goal else None


def _now_local(tz: str) -> date:
    """Today in the facilities' time zone."""
    return datetime.now(ZoneInfo(tz)).date()


def _facility(principal: Principal, level: str, facility_id: str | None) -> str | None:
    """The facility a figures page is about (None: the whole city, for city accounts)."""
    if level == "city":
        if principal.facility_id is not None:
            raise HTTPException(403, "시 전체 실적은 시 관리자만 볼 수 있습니다.")
        return None
    chosen = facility_id or principal.facility_id
    if chosen is not None and not principal.sees_facility(chosen):
        raise HTTPException(403, "다른 기관의 자료에는 접근할 수 없습니다")
    return chosen


def _targets(
    conn: Conn,
    *,
    level: str,
    facility_id: str | None,
    programs: list[ProgramWithTargets],
    program_id: str | None,
    team: str | None,
    year: int,
) -> Targets:
    """The yearly target of what is shown: the program's, a team's sum, the report's node."""
    if level == "program":
        return next((p.targets for p in programs if p.program_id == program_id), Targets())
    if level == "team":
        mine = [p.targets for p in programs if p.team == team]
        visits = [t.person_visits for t in mine if t.person_visits is not None]
        cases = [t.cases for t in mine if t.cases is not None]
        return Targets(
            # unique persons cannot be added up across programs: only a one-program team's
            unique_persons=mine[0].unique_persons if len(mine) == 1 else None,
            person_visits=sum(visits) if visits else None,
            cases=sum(cases) if cases else None,
        )
    return total_target(conn, facility_id=facility_id, year=year)


def _lines(conn: Conn, *, scope: Scope, year: int, target: Targets) -> list[Line]:
    """Every month of the year, each quarter and the year, counted by the engine at once."""
    months = [
        Period.months(f"{year}-{m:02d}", date(year, m, 1), date(year, m, 1)) for m in range(1, 13)
    ]
    quarters = [
        Period.months(f"{q}분기", date(year, 3 * q - 2, 1), date(year, 3 * q, 1))
        for q in range(1, 5)
    ]
    whole = Period.months(f"{year}년", date(year, 1, 1), date(year, 12, 1))
    rows = compute(conn, periods=[*months, *quarters, whole], dims=["period"], scope=scope)
    by_label = {r.key["period"]: r.figures() for r in rows}

    def share(months_in: int) -> dict[str, float | None]:
        """The yearly target pro rata (unique persons: the whole target for any span)."""
        return {
            "unique_persons": float(target.unique_persons) if target.unique_persons else None,
            "person_visits": target.person_visits * months_in / 12
            if target.person_visits
            else None,
            "cases": target.cases * months_in / 12 if target.cases else None,
        }

    out: list[Line] = []
    for q in range(4):
        for period in months[3 * q : 3 * q + 3]:
            out.append(Line(period.label, "month", by_label.get(period.label, Figures()), share(1)))
        label = quarters[q].label
        out.append(Line(label, "quarter", by_label.get(label, Figures()), share(3)))
    out.append(Line(whole.label, "year", by_label.get(whole.label, Figures()), share(12)))
    return out


def _chart_data(lines: list[Line], target: Targets) -> str:
    """What the charts draw: each month's figures and the monthly share of the target."""
    months = [line for line in lines if line.kind == "month"]
    data: dict[str, object] = {"months": [int(line.label[-2:]) for line in months]}
    for name, _ in FIGURES:
        data[name] = [getattr(line.figures, name) for line in months]
        yearly = getattr(target, name)
        data[f"{name}_target"] = (
            None if yearly is None else (yearly if name == "unique_persons" else yearly / 12)
        )
    return json.dumps(data)


def _figures_context(
    conn: Conn,
    settings: SettingsDep,
    principal: Principal,
    *,
    level: str,
    facility_id: str | None,
    program_id: str | None,
    team: str | None,
    year: int | None,
) -> dict[str, object]:
    """What the figures page shows."""
    if level not in LEVELS:
        raise HTTPException(400, "level: facility, team, program 또는 city")
    today = _now_local(settings.timezone)
    shown_year = year or today.year
    facility = _facility(principal, level, facility_id)
    if level != "city" and facility is None:
        level = "city" if principal.facility_id is None else level
    programs = store.list_programs(conn, facility_id=facility, year=shown_year)
    teams = sorted({p.team for p in programs if p.team})
    if level == "program" and program_id not in {p.program_id for p in programs}:
        program_id = programs[0].program_id if programs else None
    if level == "team" and team not in teams:
        team = teams[0] if teams else None
    scope = Scope(
        facility_id=facility,
        program_id=program_id if level == "program" else None,
        team=team if level == "team" else None,
    )
    target = _targets(
        conn,
        level=level,
        facility_id=facility,
        programs=programs,
        program_id=program_id,
        team=team,
        year=shown_year,
    )
    lines = _lines(conn, scope=scope, year=shown_year, target=target)
    names = {p.program_id: p.name for p in programs}
    title = {
        "facility": f"{facility} 기관 전체",
        "city": "시 전체",
        "program": names.get(program_id or "", program_id or "(프로그램 없음)"),
        "team": team or "(팀 없음)",
    }[level]
    facilities = store.list_facilities(conn) if principal.facility_id is None else []
    return {
        **page_context(principal),
        "level": level,
        "levels": LEVELS,
        "facility_id": facility,
        "facilities": facilities,
        "program_id": program_id,
        "team": team,
        "programs": programs,
        "teams": teams,
        "year": shown_year,
        "quarter": (today.month - 1) // 3 + 1 if today.year == shown_year else 4,
        "lines": lines,
        "target": target,
        "figures": FIGURES,
        "title": title,
        "chart": _chart_data(lines, target),
        "can_download": principal.can(Permission.REPORT_DOWNLOAD),
        "min_password": MIN_FILE_PASSWORD,
    }


@router.get("/figures", response_class=HTMLResponse)
def figures_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: FiguresReader,
    level: Annotated[str, Query(max_length=16)] = "facility",
    facility_id: FacilityQuery = None,
    program_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    team: Annotated[str | None, Query(max_length=40)] = None,
    year: Year = None,
) -> HTMLResponse:
    """The figures of a program, team, center or the city by month and quarter."""
    context = _figures_context(
        conn,
        settings,
        principal,
        level=level,
        facility_id=facility_id,
        program_id=program_id,
        team=team,
        year=year,
    )
    return templates.TemplateResponse(
        request, "figures_page.html", {**context, "errors": {}, "typed": {}}
    )


@router.post("/figures/report", response_model=None)
def post_report(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: ReportDownloader,
    year: Annotated[str, Form(max_length=8)] = "",
    quarter: Annotated[str, Form(max_length=4)] = "",
    file_format: Annotated[str, Form(alias="format", max_length=8)] = "xlsx",
    reason: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    password_again: Annotated[str, Form(max_length=200)] = "",
    facility_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The quarterly report in the city's form, encrypted (the API's download, from a form)."""
    errors: dict[str, str] = {}
    if not (year.isdigit() and 2000 <= int(year) <= 2100):
        errors["year"] = "연도를 네 자리로 입력하세요 (예: 2026)."
    if quarter not in ("1", "2", "3", "4"):
        errors["quarter"] = "분기를 고르세요 (1–4)."
    if file_format not in ("xlsx", "csv"):
        errors["format"] = "파일 형식을 고르세요."
    errors.update(download_errors(reason, password, password_again))
    facility = facility_id or None
    if facility is not None and not principal.sees_facility(facility):
        raise HTTPException(403, "다른 기관의 자료에는 접근할 수 없습니다")
    if errors:
        context = _figures_context(
            conn,
            settings,
            principal,
            level="facility" if facility or principal.facility_id else "city",
            facility_id=facility,
            program_id=None,
            team=None,
            year=int(year) if not errors.get("year") else None,
        )
        typed = {"year": year, "quarter": quarter, "format": file_format, "reason": reason}
        return templates.TemplateResponse(
            request,
            "figures_page.html",
            {**context, "errors": errors, "typed": typed},
            status_code=400,
        )
    body = ReportDownload(
        reason=reason.strip(),
        password=password,
        year=int(year),
        quarter=int(quarter),
        format="csv" if file_format == "csv" else "xlsx",
        facility_id=facility,
    )
    return report_file(conn, principal, body)


def _month_range(
    settings: SettingsDep, first_month: str | None, last_month: str | None
) -> tuple[date, date]:
    """The months asked for (default: this year to this month), in order."""
    today = _now_local(settings.timezone)
    lo = date.fromisoformat(f"{first_month}-01") if first_month else date(today.year, 1, 1)
    hi = date.fromisoformat(f"{last_month}-01") if last_month else today.replace(day=1)
    if hi < lo:
        raise HTTPException(400, "끝 달이 시작 달보다 앞입니다.")
    return lo, hi


@router.get("/figures/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: FiguresReader,
    first_month: MonthText = None,
    last_month: MonthText = None,
    facility_id: FacilityQuery = None,
) -> HTMLResponse:
    """Users by gender, age band, neighbourhood and program, and programs per person."""
    lo, hi = _month_range(settings, first_month, last_month)
    facility = facility_id or principal.facility_id
    if not principal.sees_facility(facility):
        raise HTTPException(403, "다른 기관의 자료에는 접근할 수 없습니다")
    found: Statistics = statistics(conn, facility_id=facility, first_month=lo, last_month=hi)
    names = {p.program_id: p.name for p in store.list_programs(conn, facility_id=facility)}
    return templates.TemplateResponse(
        request,
        "figures_statistics.html",
        {
            **page_context(principal),
            "stats": found,
            "first_month": f"{lo:%Y-%m}",
            "last_month": f"{hi:%Y-%m}",
            "facility_id": facility,
            "facilities": store.list_facilities(conn) if principal.facility_id is None else [],
            "names": names,
            "last_day": month_end(hi),
        },
    )


@router.get("/figures/duplicates", response_class=HTMLResponse)
def duplicates_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: DuplicatesReader,
    first_month: MonthText = None,
    last_month: MonthText = None,
    level: Annotated[Literal["unit_business", "business_area"], Query()] = "unit_business",
) -> HTMLResponse:
    """The city's duplicate-service view (pseudonymous person ids; the view is audited)."""
    principal.check_facility(None)
    lo, hi = _month_range(settings, first_month, last_month)
    found = duplicate_service(conn, first_month=lo, last_month=hi, level=level)
    page = templates.TemplateResponse(
        request,
        "figures_duplicates.html",
        {
            **page_context(principal),
            "rows": found,
            "first_month": f"{lo:%Y-%m}",
            "last_month": f"{hi:%Y-%m}",
            "level": level,
            "persons": len({r.person_id for r in found}),
        },
    )
    write_audit(  # last: the audit chain's lock is held until the commit
        conn,
        actor=principal.actor,
        action="view",
        subject="figures:duplicates",
        detail={"first_month": f"{lo:%Y-%m}", "last_month": f"{hi:%Y-%m}", "persons": len(found)},
    )
    return page
