"""The report through the JSON API, as .xlsx (LibreOffice converts it) and .csv: same numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msoffcrypto
import psycopg
import pytest
import pyzipper
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.figures.export import FIRST_DATA_ROW, FIRST_FIGURE_COLUMN, FIXED, columns
from ingest_api.figures.models import QuarterlyReport
from ingest_api.main import create_app
from tests.ingest_api.figures.conftest import YEAR
from tests.security_helpers import add_account, session_headers
from welfare.forms import A3_LANDSCAPE_PT, pages, to_pdf, to_png

FILE_PASSWORD = "report-file-pw-7"
# Signed-in browsers: B's manager and a city administrator (set up once per module).
STAFF: dict[str, str] = {}
CITY: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _accounts(city_db: str) -> None:
    """B's manager kim.ts and the city's administrator, each with a session."""
    add_account(city_db, "kim.ts", Role.CENTER_MANAGER, facility_id="B")
    add_account(city_db, "city.park", Role.CITY_ADMIN)
    STAFF.update(session_headers(city_db, "kim.ts"))
    CITY.update(session_headers(city_db, "city.park"))


@pytest.fixture
def client(city_db: str) -> Iterator[TestClient]:
    """The central app (no consumer, no background refresh) on the generated year."""
    app = create_app(Settings(database_url=city_db, refresh_interval_s=0), consume=False)
    with TestClient(app) as c:
        yield c


def _report(client: TestClient, **params: Any) -> QuarterlyReport:
    """The JSON report (as the city's administrator)."""
    response = client.get("/api/v1/figures/report", params=params, headers=CITY)
    assert response.status_code == 200, response.text
    return QuarterlyReport.model_validate(response.json())


def _expected_table(report: QuarterlyReport) -> list[list[Any]]:
    """The numbers of every row, column by column, as the JSON gives them."""
    cols = columns(report)
    return [[c.value(row) for c in cols] for row in report.rows]


def test_xlsx_numbers_match_the_api_and_print_one_page_wide_on_a3(
    client: TestClient, city_db: str, tmp_path: Path
) -> None:
    """The downloaded workbook holds the API's numbers in the forms' layout, and LibreOffice
    prints it on A3 landscape one page wide: every page of the form carries its first and its
    last column, and the chart sheet is one more page."""
    report = _report(client, facility_id="B", year=YEAR, quarter=3)
    response = client.post(
        "/api/v1/figures/report/download",
        json={
            "facility_id": "B",
            "year": YEAR,
            "quarter": 3,
            "format": "xlsx",
            "reason": "3분기 시 제출",
            "password": FILE_PASSWORD,
        },
        headers=STAFF,
    )
    assert response.status_code == 200, response.text
    # The file is encrypted (an Office container, not a readable zip) with the chosen password.
    assert response.content.startswith(b"\xd0\xcf\x11\xe0")
    office = msoffcrypto.OfficeFile(io.BytesIO(response.content))
    with pytest.raises(msoffcrypto.exceptions.InvalidKeyError):
        office.load_key(password="not-the-password", verify_password=True)
    office = msoffcrypto.OfficeFile(io.BytesIO(response.content))
    office.load_key(password=FILE_PASSWORD)
    clear = io.BytesIO()
    office.decrypt(clear)
    path = tmp_path / "report_B.xlsx"
    path.write_bytes(clear.getvalue())
    book = load_workbook(path)
    ws = book.worksheets[0]
    width = len(columns(report))
    table = [
        [
            ws.cell(row=r, column=c).value
            for c in range(FIRST_FIGURE_COLUMN, FIRST_FIGURE_COLUMN + width)
        ]
        for r in range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(report.rows))
    ]
    assert table == _expected_table(report)
    assert ws.cell(row=FIRST_DATA_ROW + len(report.rows), column=1).value is None
    headers = [ws.cell(row=FIRST_DATA_ROW - 3, column=c).value for c in range(1, len(FIXED) + 1)]
    assert headers == [name for name, _ in FIXED]
    meal = next(
        r for r in range(FIRST_DATA_ROW, ws.max_row + 1) if ws.cell(r, 6).value == "경로식당 점심"
    )
    assert [ws.cell(meal, c).value for c in (7, 8, 9)] == ["지역복지팀", "김은정", "상시"]
    assert ws.cell(meal, 1).value.count("-") == 3  # item number down to the program
    assert (int(ws.page_setup.paperSize), ws.page_setup.orientation) == (8, "landscape")  # A3
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    chart_sheet = book.worksheets[1]
    assert len(chart_sheet._charts) == 2
    assert [chart_sheet.cell(4 + m, 3).value for m in range(1, 10)] == [
        m.person_visits for m in report.monthly
    ]
    # The download was audited with its reason.
    with psycopg.connect(city_db) as conn:
        audit = conn.execute(
            "SELECT actor, action, reason FROM audit_log WHERE subject = %s",
            (f"report:B:{YEAR}-Q3",),
        ).fetchall()
    assert ("kim.ts", "download", "3분기 시 제출") in audit
    pdf = to_pdf(path, tmp_path)
    printed = pages(pdf)
    assert len(printed) == 2  # the form on one A3 page, the chart sheet on another
    for page in printed:
        assert (round(page.width), round(page.height)) == tuple(round(x) for x in A3_LANDSCAPE_PT)
    form, chart = printed
    # Both ends of the form on the same page: nothing was pushed to a page to the right.
    assert "실적 산정 지표" in form.text
    assert "달성률" in form.text
    assert "경로식당 점심" in form.text
    assert "월별 실적과 목표" in chart.text
    picture = to_png(pdf, tmp_path / "chart.png", page=2, dpi=30)
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_the_docs_show_the_rendered_report() -> None:
    """docs/figures.md shows the printed form and its chart, made by `welfare forms render`."""
    docs = Path(__file__).parents[3] / "docs"
    text = (docs / "figures.md").read_text()
    for name in ("report_center_B.png", "report_city.png", "report_chart.png"):
        assert (docs / "screens" / name).exists(), f"run `welfare forms render`: {name}"
        assert f"screens/{name}" in text


def test_csv_numbers_match_the_api(client: TestClient) -> None:
    """The city's CSV carries the same numbers as the JSON, row for row."""
    report = _report(client, year=YEAR, quarter=1)
    response = client.post(
        "/api/v1/figures/report/download",
        json={
            "year": YEAR,
            "quarter": 1,
            "format": "csv",
            "reason": "시 취합",
            "password": FILE_PASSWORD,
        },
        headers=CITY,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with pyzipper.AESZipFile(io.BytesIO(response.content)) as archive:
        (name,) = archive.namelist()
        assert name == f"report_city_{YEAR}Q1.csv"
        with pytest.raises(RuntimeError):
            archive.read(name)  # no password, no content
        archive.setpassword(FILE_PASSWORD.encode())
        text = archive.read(name).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cols = columns(report)
    fixed = len(FIXED)
    assert rows[0][:fixed] == [name for name, _ in FIXED]
    assert rows[0][fixed:] == [c.flat for c in cols]
    got = [[("" if v == "" else float(v)) for v in r[fixed:]] for r in rows[1:]]
    want = [["" if v is None else float(v) for v in r] for r in _expected_table(report)]
    assert got == want


def test_download_needs_a_reason_a_password_and_a_session(client: TestClient) -> None:
    """No reason, no file password or no session: refused, nothing downloaded."""
    body = {"facility_id": "B", "year": YEAR, "quarter": 3}
    url = "/api/v1/figures/report/download"
    assert (
        client.post(url, json={**body, "password": FILE_PASSWORD}, headers=STAFF).status_code == 422
    )
    assert client.post(url, json={**body, "reason": "제출"}, headers=STAFF).status_code == 422
    assert (
        client.post(url, json={**body, "reason": "제출", "password": "short"}, headers=STAFF)
    ).status_code == 422
    full = {**body, "reason": "제출", "password": FILE_PASSWORD}
    assert client.post(url, json=full).status_code == 401
    # Another center's report is not B's manager's to take.
    assert client.post(url, json={**full, "facility_id": "A"}, headers=STAFF).status_code == 403


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
        headers=CITY,
    ).json()
    assert {r["key"]["fee_type"] for r in rows} <= {"paid", "reduced", "free"}
    assert (
        client.get(
            "/api/v1/figures/query",
            params={"first_month": f"{YEAR}-03", "last_month": f"{YEAR}-01"},
            headers=CITY,
        ).status_code
        == 400
    )
    stats = client.get(
        "/api/v1/figures/statistics",
        params={"first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12", "facility_id": "B"},
        headers=STAFF,
    ).json()
    assert stats["total_users"] == sum(r["users"] for r in stats["by_gender"])
    assert stats["total_users"] == sum(r["users"] for r in stats["by_age_band"])
    assert stats["total_users"] == sum(p["persons"] for p in stats["programs_per_person"])
    dups = client.get(
        "/api/v1/figures/duplicates",
        params={"first_month": f"{YEAR}-01", "last_month": f"{YEAR}-12"},
        headers=CITY,
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


def test_a_quarter_without_data_is_an_empty_form_and_bad_requests_are_refused(
    client: TestClient, tmp_path: Path
) -> None:
    """A quarter nobody attended gives the same rows and columns, all zero; an unknown
    facility is 404 and a malformed period 422, with the reason."""
    empty = _report(client, facility_id="B", year=YEAR + 1, quarter=1)
    full = _report(client, facility_id="B", year=YEAR, quarter=1)
    assert [(r.level, r.label) for r in empty.rows] == [(r.level, r.label) for r in full.rows]
    assert all(
        block.total.person_visits == 0 and block.daily_average is None
        for row in empty.rows
        for block in row.periods.values()
    )
    assert [m.person_visits for m in empty.monthly] == [0, 0, 0]
    download = client.post(
        "/api/v1/figures/report/download",
        json={
            "facility_id": "B",
            "year": YEAR + 1,
            "quarter": 1,
            "format": "xlsx",
            "reason": "빈 분기 확인",
            "password": FILE_PASSWORD,
        },
        headers=STAFF,
    )
    assert download.status_code == 200, download.text
    office = msoffcrypto.OfficeFile(io.BytesIO(download.content))
    office.load_key(password=FILE_PASSWORD)
    clear = io.BytesIO()
    office.decrypt(clear)
    ws = load_workbook(clear).worksheets[0]
    assert ws.cell(FIRST_DATA_ROW, FIRST_FIGURE_COLUMN + len(columns(empty)) - 1).value is None
    assert ws.cell(FIRST_DATA_ROW, FIRST_FIGURE_COLUMN + 6).value == 0  # 1월 실인원 계
    unknown = client.get(
        "/api/v1/figures/report",
        params={"facility_id": "Z", "year": YEAR, "quarter": 1},
        headers=CITY,
    )
    assert unknown.status_code == 404
    assert "Z" in unknown.json()["detail"]
    for params in ({"year": YEAR, "quarter": 5}, {"year": "2026년", "quarter": 1}, {"quarter": 1}):
        bad = client.get("/api/v1/figures/report", params=params, headers=STAFF)
        assert bad.status_code == 422, params
    bad_month = client.get(
        "/api/v1/figures/query",
        params={"first_month": "2026-13", "last_month": "2026-12"},
        headers=STAFF,
    )
    assert bad_month.status_code == 422
