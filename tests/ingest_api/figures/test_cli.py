"""`welfare report` and `welfare import` from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import load_workbook

from ingest_api.figures.export import FIRST_DATA_ROW, FIRST_FIGURE_COLUMN, columns
from ingest_api.figures.models import QuarterlyReport
from ingest_api.registry import store
from ingest_api.registry.models import Facility
from tests.ingest_api.figures.conftest import YEAR, fresh_database
from welfare.cli import main


def test_report_command_writes_xlsx_csv_and_json(
    city_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The three formats carry the same numbers for center B's fourth quarter."""
    monkeypatch.setenv("DATABASE_URL", city_db)
    args = ["report", "--facility", "B", "--year", str(YEAR), "--quarter", "4"]
    assert main([*args, "--format", "json", "--out", str(tmp_path / "r.json")]) == 0
    assert main([*args, "--format", "xlsx", "--out", str(tmp_path / "r.xlsx")]) == 0
    assert main([*args, "--format", "csv"]) == 0
    report = QuarterlyReport.model_validate_json((tmp_path / "r.json").read_text())
    total = report.rows[0].periods[f"{YEAR}-Q4"].total
    ws = load_workbook(tmp_path / "r.xlsx").worksheets[0]
    quarter = report.period_labels[f"{YEAR}-Q4"]
    cols = columns(report)
    at = next(
        i for i, c in enumerate(cols) if (c.top, c.group, c.leaf) == (quarter, "실인원", "계")
    )
    quarter_first = FIRST_FIGURE_COLUMN + at
    assert ws.cell(row=FIRST_DATA_ROW, column=quarter_first).value == total.unique_persons
    assert ws.cell(row=FIRST_DATA_ROW, column=quarter_first + 3).value == total.person_visits
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("연번,구분,기능")
    assert csv_lines[1].split(",")[quarter_first - 1] == str(total.unique_persons)
    assert (
        main(
            ["report", "--facility", "Z", "--year", str(YEAR), "--quarter", "1", "--format", "json"]
        )
        == 2
    )
    assert (
        main(
            [
                "report",
                "--city",
                "--year",
                str(YEAR),
                "--quarter",
                "1",
                "--format",
                "json",
                "--out",
                str(tmp_path / "city.json"),
            ]
        )
        == 0
    )


def test_import_command_reports_bad_cells_and_imports_good_files(
    pg_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad file exits 1 naming the cell; a good one imports; a re-import changes nothing."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="C", name="늘푸른사회복지관"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", "cli-test-key-0123456789abcdef")
    programs = tmp_path / "programs.csv"
    programs.write_text(
        "program_id,name,function,business_area,unit_business,fee_type\n"
        "C-MEAL,경로식당,서비스제공,지역사회보호,급식지원서비스,무료\n",
        encoding="utf-8",
    )
    assert main(["import", "programs", str(programs), "--facility", "C"]) == 0
    members = tmp_path / "members.csv"
    members.write_text(
        "회원번호,성명,생년월일,이용프로그램\nC-1,김옥자,1939-02-30,C-MEAL\n", encoding="utf-8"
    )
    assert main(["import", "members", str(members), "--facility", "C"]) == 1
    out = capsys.readouterr().out
    assert "C2 [생년월일] '1939-02-30': expected a date" in out
    members.write_text(
        "회원번호,성명,생년월일,이용프로그램\nC-1,김옥자,1939-02-28,C-MEAL\n", encoding="utf-8"
    )
    assert main(["import", "members", str(members), "--facility", "C"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["inserted"] == 1
    assert main(["import", "members", str(members), "--facility", "C"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["unchanged"] == 1
