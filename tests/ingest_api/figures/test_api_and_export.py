"""The report through the JSON API, as .xlsx (LibreOffice converts it) and .csv: same numbers."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from ingest_api.core.config import Settings
from ingest_api.figures.export import FIRST_DATA_ROW, columns
from ingest_api.figures.models import QuarterlyReport
from ingest_api.main import create_app
from tests.ingest_api.figures.conftest import YEAR

STAFF = {"X-Actor": "kim.ts"}


@pytest.fixture
def client(city_db: str) -> Iterator[TestClient]:
    """The central app (no consumer, no background refresh) on the generated year."""
    app = create_app(Settings(database_url=city_db, refresh_interval_s=0), consume=False)
    with TestClient(app) as c:
        yield c


def _report(client: TestClient, **params: Any) -> QuarterlyReport:
    """The JSON report."""
    response = client.get("/api/v1/figures/report", params=params)
    assert response.status_code == 200, response.text
    return QuarterlyReport.model_validate(response.json())


def _expected_table(report: QuarterlyReport) -> list[list[Any]]:
    """The numbers of every row, column by column, as the JSON gives them."""
    cols = columns(report)
    return [[c.value(row) for c in cols] for row in report.rows]


def test_xlsx_numbers_match_the_api_and_libreoffice_converts_it(
    client: TestClient, city_db: str, tmp_path: Path
) -> None:
    """The downloaded workbook holds the API's numbers and opens in LibreOffice (PDF)."""
    report = _report(client, facility_id="B", year=YEAR, quarter=3)
    response = client.get(
        "/api/v1/figures/report/download",
        params={
            "facility_id": "B",
            "year": YEAR,
            "quarter": 3,
            "format": "xlsx",
            "reason": "3분기 시 제출",
        },
        headers=STAFF,
    )
    assert response.status_code == 200, response.text
    path = tmp_path / "report_B.xlsx"
    path.write_bytes(response.content)
    ws = load_workbook(path).worksheets[0]
    first_col = 7  # after the six hierarchy columns
    table = [
        [ws.cell(row=r, column=c).value for c in range(first_col, first_col + len(columns(report)))]
        for r in range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(report.rows))
    ]
    assert table == _expected_table(report)
    assert ws.cell(row=FIRST_DATA_ROW + len(report.rows), column=1).value is None
    labels = [ws.cell(row=r, column=5).value for r in range(FIRST_DATA_ROW, ws.max_row + 1)]
    assert "경로식당 점심" in labels
    # The download was audited with its reason.
    with psycopg.connect(city_db) as conn:
        audit = conn.execute(
            "SELECT actor, action, reason FROM audit_log WHERE subject = %s",
            (f"report:B:{YEAR}-Q3",),
        ).fetchall()
    assert ("kim.ts", "download", "3분기 시 제출") in audit
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.fail("LibreOffice is missing: apt-get install libreoffice-calc-nogui")
    subprocess.run(
        [
            office,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "report_B.pdf"
    assert pdf.exists()
    assert pdf.read_bytes().startswith(b"%PDF")
    assert pdf.stat().st_size > 5_000


def test_csv_numbers_match_the_api(client: TestClient) -> None:
    """The city's CSV carries the same numbers as the JSON, row for row."""
    report = _report(client, year=YEAR, quarter=1)
    response = client.get(
        "/api/v1/figures/report/download",
        params={"year": YEAR, "quarter": 1, "format": "csv", "reason": "시 취합"},
        headers=STAFF,
    )
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cols = columns(report)
    assert rows[0][6:] == [c.flat for c in cols]
    got = [[("" if v == "" else float(v)) for v in r[6:]] for r in rows[1:]]
    want = [["" if v is None else float(v) for v in r] for r in _expected_table(report)]
    assert got == want


def test_download_needs_a_reason_and_an_actor(client: TestClient) -> None:
    """No reason or no staff id: refused, nothing downloaded."""
    params = {"facility_id": "B", "year": YEAR, "quarter": 3}
    assert (
        client.get("/api/v1/figures/report/download", params=params, headers=STAFF).status_code
        == 422
    )
    assert (
        client.get(
            "/api/v1/figures/report/download", params={**params, "reason": "제출"}
        ).status_code
        == 422
    )


def test_query_statistics_and_duplicates(client: TestClient, city_db: str) -> None:
    """Slices, the self-service statistics and the city's duplicate-service view."""
    rows = client.get(
        "/api/v1/figures/query",
        params={
            "first_month": f"{YEAR}-01",
            "last_month": f"{YEAR}-12",
            "dims": "gender,fee_type",
            "facility_id": "A",
        },
    ).json()
    assert {r["key"]["fee_type"] for r in rows} <= {"paid", "reduced", "free"}
    assert (
        client.get(
            "/api/v1/figures/query",
            params={"first_month": f"{YEAR}-03", "last_month": f"{YEAR}-01"},
        ).status_code
        == 400
    )
    stats = client.get(
        "/api/v1/figures/statistics",
        params={"first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12", "facility_id": "B"},
    ).json()
    assert stats["total_users"] == sum(r["users"] for r in stats["by_gender"])
    assert stats["total_users"] == sum(r["users"] for r in stats["by_age_band"])
    assert stats["total_users"] == sum(p["persons"] for p in stats["programs_per_person"])
    dups = client.get(
        "/api/v1/figures/duplicates",
        params={"first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12"},
        headers=STAFF,
    )
    assert dups.status_code == 200
    found = dups.json()
    assert found, "people registered at B and E both eat at a meal hall"
    assert all(len(d["facilities"]) > 1 for d in found)
    with psycopg.connect(city_db) as conn:
        shared = {
            r[0]
            for r in conn.execute(
                "SELECT person_id FROM members GROUP BY person_id"
                " HAVING count(DISTINCT facility_id) > 1"
            )
        }
        assert {d["person_id"] for d in found} <= shared
        assert conn.execute(
            "SELECT count(*) FROM audit_log WHERE subject = 'figures:duplicates'"
        ).fetchone() == (1,)
