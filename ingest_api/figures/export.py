"""The quarterly report as .xlsx (openpyxl) and .csv, column for column the same as the JSON.

The layout is the union of the five centers' own forms (figures 2-5, 2-9, 2-10, 2-12 and 2-14
of the city's research report): item number (연번), the hierarchy, team (팀명), person in charge
(담당자), operating form (운영형태), the indicator text (실적 산정 지표), fee type and number of
programs; the yearly targets by figure and by gender; each month's and the quarter's unique
persons, person-visits (both in all, 남, 여) and cases; the quarter's operating days, daily
average (일평균) and the 유료/감면/무료 split; the year to date and the achievement rate. The
workbook prints one page wide on A3 landscape, and a second sheet charts the months of the year
so far against the targets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from broker.vocabulary import FEE_LABELS, FUNCTION_LABELS, FeeType, Function
from ingest_api.figures.const import LEVEL_LABELS
from ingest_api.figures.models import Block, QuarterlyReport, ReportRow

Value = int | float | str | None

# The descriptive columns before the figures: (header, width in characters).
FIXED: tuple[tuple[str, float], ...] = (
    ("연번", 6),
    ("구분", 9),
    ("기능", 12),
    ("사업분야", 10),
    ("단위사업", 11),
    ("세부프로그램", 14),
    ("팀명", 8),
    ("담당자", 6),
    ("운영형태", 6),
    ("실적 산정 지표", 18),
    ("요금", 4.5),
    ("프로그램 수", 5),
)
# A month's columns: (group, leaf, block part, figure).
_MONTH: tuple[tuple[str, str, str, str], ...] = (
    ("실인원", "계", "total", "unique_persons"),
    ("실인원", "남", "male", "unique_persons"),
    ("실인원", "여", "female", "unique_persons"),
    ("연인원", "계", "total", "person_visits"),
    ("연인원", "남", "male", "person_visits"),
    ("연인원", "여", "female", "person_visits"),
    ("건", "", "total", "cases"),
)
# The quarter adds its operating days, daily average and the fee-type split.
_QUARTER: tuple[tuple[str, str, str, str], ...] = (
    *_MONTH,
    ("운영일수", "", "total", "operating_days"),
    ("일평균", "", "total", "daily_average"),
    *(
        (FEE_LABELS[fee], figure_label, fee.value, figure)
        for fee in (FeeType.PAID, FeeType.REDUCED, FeeType.FREE)
        for figure_label, figure in (
            ("실인원", "unique_persons"),
            ("연인원", "person_visits"),
            ("건", "cases"),
        )
    ),
)
_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("실인원", "계", "unique_persons"),
    ("실인원", "남", "unique_persons_male"),
    ("실인원", "여", "unique_persons_female"),
    ("연인원", "", "person_visits"),
    ("건", "", "cases"),
)
_FIGURES: tuple[tuple[str, str], ...] = (
    ("실인원", "unique_persons"),
    ("연인원", "person_visits"),
    ("건", "cases"),
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the form: its three header levels and how to read its value from a row."""

    top: str
    group: str
    leaf: str
    value: Callable[[ReportRow], Value]

    @property
    def flat(self) -> str:
        """The single-line header used in the CSV."""
        return " ".join(part for part in (self.top, self.group, self.leaf) if part)


def _fixed(row: ReportRow) -> list[Value]:
    """The descriptive columns of a row."""
    return [
        row.item_no or (row.facility_id if row.level == "facility" else ""),
        LEVEL_LABELS[row.level],
        FUNCTION_LABELS[Function(row.function)] if row.function else "",
        row.business_area or "",
        row.unit_business or "",
        row.label if row.level in ("program", "total", "facility") else "",
        row.team,
        row.manager,
        row.operating_form,
        row.indicator,
        FEE_LABELS[FeeType(row.fee_type)] if row.fee_type else "",
        row.programs,
    ]


def _figure(period: str, part: str, figure: str) -> Callable[[ReportRow], Value]:
    """Reader of one period cell."""

    def read(row: ReportRow) -> Value:
        block: Block = row.periods[period]
        if figure == "daily_average":
            return block.daily_average
        value: int = getattr(getattr(block, part), figure)
        return value

    return read


def _attr(section: str, figure: str) -> Callable[[ReportRow], Value]:
    """Reader of a target, year-to-date or achievement cell."""

    def read(row: ReportRow) -> Value:
        value: Value = getattr(getattr(row, section), figure)
        return value

    return read


def columns(report: QuarterlyReport) -> list[Column]:
    """The form's figure columns: targets, each month, the quarter, year to date, rate."""
    cols = [Column("연간 목표", g, leaf, _attr("target", f)) for g, leaf, f in _TARGETS]
    quarter = f"{report.year}-Q{report.quarter}"
    for period in [*report.months, quarter]:
        top = report.period_labels[period]
        for group, leaf, part, figure in _QUARTER if period == quarter else _MONTH:
            cols.append(Column(top, group, leaf, _figure(period, part, figure)))
    for top, section in (("누계 실적", "year_to_date"), ("달성률(%)", "achievement")):
        for group, figure in _FIGURES:
            cols.append(Column(top, group, "", _attr(section, figure)))
    return cols


def title(report: QuarterlyReport) -> str:
    """The report's title line."""
    return f"{report.year}년 {report.quarter}분기 사업실적 보고 - {report.facility_name}"


def _note(report: QuarterlyReport) -> str:
    """The line under the title: period and how to read the figures."""
    return (
        f"기간 {report.first_day} ~ {report.last_day} · 실인원은 기간 내 중복 없는 인원"
        " (월별 실인원의 합이 아님) · 연인원·건은 프로그램별 산출기준에 따름 · 운영일수는"
        " 이용이 있었던 날 수, 일평균 = 연인원 ÷ 운영일수 · 달성률 = 누계 실적 ÷ 연간 목표"
    )


def to_csv(report: QuarterlyReport) -> str:
    """The report as CSV (UTF-8 with BOM, so Excel on Korean Windows opens it correctly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    cols = columns(report)
    writer.writerow([*(name for name, _ in FIXED), *(c.flat for c in cols)])
    for row in report.rows:
        writer.writerow([*_fixed(row), *("" if (v := c.value(row)) is None else v for c in cols)])
    return "\ufeff" + out.getvalue()


_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="BDD7EE")
_FILLS = {
    "total": PatternFill("solid", fgColor="D9D9D9"),
    "facility": PatternFill("solid", fgColor="E7E6E6"),
    "function": PatternFill("solid", fgColor="DDEBF7"),
    "business_area": PatternFill("solid", fgColor="EDF4FB"),
    "unit_business": PatternFill("solid", fgColor="F7FAFD"),
}
_FONT = "맑은 고딕"  # the centers' Office default; LibreOffice substitutes a Korean font
FIRST_DATA_ROW = 6  # title, note, then three header rows
FIRST_FIGURE_COLUMN = len(FIXED) + 1


def _runs(keys: list[object]) -> list[tuple[int, int]]:
    """Index ranges (first, last) of equal neighbouring keys."""
    runs: list[tuple[int, int]] = []
    for i, key in enumerate(keys):
        if runs and keys[runs[-1][0]] == key:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _text_width(text: str) -> int:
    """Width of a text in Excel character units (a Korean syllable is about two)."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _a3_landscape(ws: Any, *, tall: int) -> None:
    """Print one page wide on A3 landscape (`tall` pages high at most, 0: as many as needed)."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A3
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = tall
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.3
    ws.page_margins.top = ws.page_margins.bottom = 0.4
    ws.print_options.horizontalCentered = True


def _header(ws: Any, cols: list[Column]) -> None:
    """The three header rows, equal neighbouring headers merged as the hand-made forms do."""
    top, mid, leaf = FIRST_DATA_ROW - 3, FIRST_DATA_ROW - 2, FIRST_DATA_ROW - 1
    for i, (name, _) in enumerate(FIXED, start=1):
        ws.cell(row=top, column=i, value=name)
        ws.merge_cells(start_row=top, start_column=i, end_row=leaf, end_column=i)
    start = FIRST_FIGURE_COLUMN
    for first, last in _runs([c.top for c in cols]):
        ws.cell(row=top, column=start + first, value=cols[first].top)
        if last > first:
            ws.merge_cells(
                start_row=top, start_column=start + first, end_row=top, end_column=start + last
            )
    for first, last in _runs([(c.top, c.group) for c in cols]):
        ws.cell(row=mid, column=start + first, value=cols[first].group)
        if not cols[first].leaf:
            ws.merge_cells(
                start_row=mid, start_column=start + first, end_row=leaf, end_column=start + first
            )
        elif last > first:
            ws.merge_cells(
                start_row=mid, start_column=start + first, end_row=mid, end_column=start + last
            )
    for i, col in enumerate(cols):
        if col.leaf:
            ws.cell(row=leaf, column=start + i, value=col.leaf)
    for row_cells in ws.iter_rows(min_row=top, max_row=leaf, max_col=start + len(cols) - 1):
        for cell in row_cells:
            cell.font = Font(name=_FONT, bold=True, size=9)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = _BORDER
            cell.fill = _HEADER_FILL


def _report_sheet(ws: Any, report: QuarterlyReport) -> None:
    """The form: title, note, headers and one row per hierarchy node."""
    cols = columns(report)
    ws.cell(row=1, column=1, value=title(report)).font = Font(name=_FONT, bold=True, size=14)
    ws.cell(row=2, column=1, value=_note(report)).font = Font(name=_FONT, size=9)
    _header(ws, cols)
    widths = [4.5] * len(cols)  # wide enough for the largest number of each column
    for r, row in enumerate(report.rows, start=FIRST_DATA_ROW):
        values: list[Value] = [*_fixed(row), *(c.value(row) for c in cols)]
        # LibreOffice keeps a row's stored height: give wrapped text the lines it needs.
        lines = max(
            -(-_text_width(str(v)) // int(width)) if v else 1
            for v, (_, width) in zip(values, FIXED, strict=False)
        )
        ws.row_dimensions[r].height = 12.5 * max(1, lines)
        fill = _FILLS.get(row.level)
        bold = row.level in ("total", "facility", "function")
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c, value=value)
            cell.border = _BORDER
            cell.font = Font(name=_FONT, size=9, bold=bold)
            cell.alignment = Alignment(vertical="center", wrap_text=c <= len(FIXED))
            if fill is not None:
                cell.fill = fill
            if isinstance(value, float):
                cell.number_format = "0.0"
            elif isinstance(value, int):
                cell.number_format = "#,##0"
            if c > len(FIXED) and value is not None:
                text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
                widths[c - FIRST_FIGURE_COLUMN] = max(
                    widths[c - FIRST_FIGURE_COLUMN], 0.95 * len(text) + 1
                )
    for i, (_, width) in enumerate(FIXED, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for i, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(FIRST_FIGURE_COLUMN + i)].width = width
    ws.row_dimensions[FIRST_DATA_ROW - 1].height = 24
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=FIRST_FIGURE_COLUMN)
    _a3_landscape(ws, tall=0)
    ws.print_title_rows = f"{FIRST_DATA_ROW - 3}:{FIRST_DATA_ROW - 1}"
    ws.oddFooter.center.text = "&P / &N"


def _chart_sheet(ws: Any, report: QuarterlyReport) -> None:
    """The months of the year so far against the targets: a table and two charts."""
    total = report.rows[0] if report.rows else None
    target = total.target if total else None
    ws.cell(row=1, column=1, value=f"{title(report)} - 월별 실적과 목표").font = Font(
        name=_FONT, bold=True, size=14
    )
    ws.cell(
        row=2,
        column=1,
        value="월 목표 = 연간 목표 ÷ 12 · 누계 목표 = 월 목표 × 경과 월 수"
        " (실인원은 월별로 더하지 않으므로 표에만 적음)",
    ).font = Font(name=_FONT, size=9)
    headers = (
        "월",
        "실인원",
        "연인원",
        "건",
        "연인원 월 목표",
        "건 월 목표",
        "연인원 누계",
        "연인원 누계 목표",
    )
    for c, name in enumerate(headers, start=1):
        cell = ws.cell(row=4, column=c, value=name)
        cell.font = Font(name=_FONT, bold=True, size=10)
        cell.fill = _HEADER_FILL
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(c)].width = 12
    visits_goal = target.person_visits / 12 if target and target.person_visits else None
    cases_goal = target.cases / 12 if target and target.cases else None
    running = 0
    for i, month in enumerate(report.monthly, start=1):
        running += month.person_visits
        values: tuple[Value, ...] = (
            f"{int(month.month[5:])}월",
            month.unique_persons,
            month.person_visits,
            month.cases,
            round(visits_goal, 1) if visits_goal else None,
            round(cases_goal, 1) if cases_goal else None,
            running,
            round(visits_goal * i, 1) if visits_goal else None,
        )
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=4 + i, column=c, value=value)
            cell.border = _BORDER
            cell.font = Font(name=_FONT, size=10)
            if isinstance(value, int | float):
                cell.number_format = "#,##0"
    last = 4 + len(report.monthly)
    months = Reference(ws, min_col=1, min_row=5, max_row=max(last, 5))

    bars = BarChart()
    bars.title = "월별 연인원과 건 (막대) · 월 목표 (선)"
    bars.y_axis.title = "연인원 · 건"
    bars.add_data(
        Reference(ws, min_col=3, max_col=4, min_row=4, max_row=max(last, 5)), titles_from_data=True
    )
    bars.set_categories(months)
    if visits_goal or cases_goal:
        goals = LineChart()
        goals.add_data(
            Reference(ws, min_col=5, max_col=6, min_row=4, max_row=max(last, 5)),
            titles_from_data=True,
        )
        bars += goals
    bars.height, bars.width = 11, 26
    ws.add_chart(bars, "J4")

    cumulative = LineChart()
    cumulative.title = "연인원 누계와 누계 목표"
    cumulative.add_data(
        Reference(ws, min_col=7, max_col=8, min_row=4, max_row=max(last, 5)), titles_from_data=True
    )
    cumulative.set_categories(months)
    cumulative.height, cumulative.width = 11, 26
    ws.add_chart(cumulative, "J27")
    _a3_landscape(ws, tall=1)


def to_xlsx(report: QuarterlyReport) -> bytes:
    """The report as an .xlsx workbook: the form, and the months charted against the targets."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"{report.year}-Q{report.quarter} 실적"
    _report_sheet(ws, report)
    _chart_sheet(wb.create_sheet("월별 추이"), report)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
