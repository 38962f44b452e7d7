"""The quarterly report as .xlsx (openpyxl) and .csv, column for column the same as the JSON."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from broker.vocabulary import FEE_LABELS, FIGURE_LABELS, FUNCTION_LABELS, FeeType, Figure, Function
from ingest_api.figures.const import LEVEL_LABELS
from ingest_api.figures.models import Block, Figures, QuarterlyReport, ReportRow

Value = int | float | str | None

_FIXED = ("구분", "기능", "사업분야", "단위사업", "세부프로그램", "요금")
# Within each period: (group, leaf, block part, figure).
_PERIOD_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("실인원", "계", "total", "unique_persons"),
    ("실인원", "남", "male", "unique_persons"),
    ("실인원", "여", "female", "unique_persons"),
    ("연인원", "계", "total", "person_visits"),
    ("연인원", "남", "male", "person_visits"),
    ("연인원", "여", "female", "person_visits"),
    ("건", "계", "total", "cases"),
    ("유료", "실인원", "paid", "unique_persons"),
    ("유료", "연인원", "paid", "person_visits"),
    ("유료", "건", "paid", "cases"),
    ("감면", "실인원", "reduced", "unique_persons"),
    ("감면", "연인원", "reduced", "person_visits"),
    ("감면", "건", "reduced", "cases"),
    ("무료", "실인원", "free", "unique_persons"),
    ("무료", "연인원", "free", "person_visits"),
    ("무료", "건", "free", "cases"),
)
_FIGURES = tuple((FIGURE_LABELS[f], f.value) for f in Figure)


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


def _fixed(row: ReportRow) -> list[str]:
    """The hierarchy columns of a row."""
    return [
        LEVEL_LABELS[row.level] if row.level != "facility" else (row.facility_id or ""),
        FUNCTION_LABELS[Function(row.function)] if row.function else "",
        row.business_area or "",
        row.unit_business or "",
        row.label if row.level in ("program", "total", "facility") else "",
        FEE_LABELS[FeeType(row.fee_type)] if row.fee_type else "",
    ]


def _figure(period: str, part: str, figure: str) -> Callable[[ReportRow], Value]:
    """Reader of one period cell."""

    def read(row: ReportRow) -> Value:
        block: Block = row.periods[period]
        figures: Figures = getattr(block, part)
        value: int = getattr(figures, figure)
        return value

    return read


def _attr(section: str, figure: str) -> Callable[[ReportRow], Value]:
    """Reader of a target, year-to-date or achievement cell."""

    def read(row: ReportRow) -> Value:
        value: Value = getattr(getattr(row, section), figure)
        return value

    return read


def columns(report: QuarterlyReport) -> list[Column]:
    """The form's columns after the hierarchy: each period's block, then target and rate."""
    cols = []
    for period in [*report.months, f"{report.year}-Q{report.quarter}"]:
        top = report.period_labels[period]
        for group, leaf, part, figure in _PERIOD_COLUMNS:
            cols.append(Column(top, group, leaf, _figure(period, part, figure)))
    for top, section in (
        ("연간목표", "target"),
        ("누계실적", "year_to_date"),
        ("달성률(%)", "achievement"),
    ):
        for leaf, figure in _FIGURES:
            cols.append(Column(top, leaf, "", _attr(section, figure)))
    return cols


def title(report: QuarterlyReport) -> str:
    """The report's title line."""
    return f"{report.year}년 {report.quarter}분기 사업실적 보고 - {report.facility_name}"


def to_csv(report: QuarterlyReport) -> str:
    """The report as CSV (UTF-8 with BOM, so Excel on Korean Windows opens it correctly)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    cols = columns(report)
    writer.writerow([*_FIXED, *(c.flat for c in cols)])
    for row in report.rows:
        writer.writerow([*_fixed(row), *("" if (v := c.value(row)) is None else v for c in cols)])
    return "\ufeff" + out.getvalue()


_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_FILLS = {
    "total": PatternFill("solid", fgColor="D9D9D9"),
    "facility": PatternFill("solid", fgColor="E7E6E6"),
    "function": PatternFill("solid", fgColor="DDEBF7"),
    "business_area": PatternFill("solid", fgColor="EDF4FB"),
    "unit_business": PatternFill("solid", fgColor="F7FAFD"),
}
FIRST_DATA_ROW = 6  # title, note, then three header rows


def _runs(keys: list[object]) -> list[tuple[int, int]]:
    """Index ranges (first, last) of equal neighbouring keys."""
    runs: list[tuple[int, int]] = []
    for i, key in enumerate(keys):
        if runs and keys[runs[-1][0]] == key:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def to_xlsx(report: QuarterlyReport) -> bytes:
    """The report as an .xlsx workbook in the form's layout (merged multi-level headers)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"{report.year}-Q{report.quarter}"
    cols = columns(report)
    ws.cell(row=1, column=1, value=title(report)).font = Font(bold=True, size=14)
    ws.cell(
        row=2,
        column=1,
        value=(
            f"기간 {report.first_day} ~ {report.last_day} · 실인원은 기간 내 중복 없는 인원"
            " (월별 실인원의 합이 아님) · 산출기준은 프로그램별 실적산출지표에 따름"
        ),
    )
    top, mid, leaf = 3, 4, 5
    for i, name in enumerate(_FIXED, start=1):
        ws.cell(row=top, column=i, value=name)
        ws.merge_cells(start_row=top, start_column=i, end_row=leaf, end_column=i)
    start = len(_FIXED) + 1
    # Merge equal neighbouring headers, level by level, as the hand-made forms do.
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
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = _BORDER
            cell.fill = PatternFill("solid", fgColor="BDD7EE")
    for r, row in enumerate(report.rows, start=leaf + 1):
        values: list[Value] = [*_fixed(row), *(c.value(row) for c in cols)]
        fill = _FILLS.get(row.level)
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c, value=value)
            cell.border = _BORDER
            if fill is not None:
                cell.fill = fill
                cell.font = Font(bold=row.level in ("total", "facility", "function"))
            if isinstance(value, float):
                cell.number_format = "0.0"
    widths = [10, 14, 14, 16, 24, 6]
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    for i in range(len(cols)):
        ws.column_dimensions[get_column_letter(start + i)].width = 7
    ws.freeze_panes = ws.cell(row=leaf + 1, column=start)
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToHeight = 0
    ws.page_setup.fitToWidth = 3  # A3 landscape, three pages wide: the form has ~70 columns
    ws.page_setup.paperSize = ws.PAPERSIZE_A3
    ws.print_title_cols = "A:F"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{top}:{leaf}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
