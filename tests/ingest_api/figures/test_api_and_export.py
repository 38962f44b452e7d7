"""The report through the JSON API, as .xlsx (LibreOffice converts it) and .csv: same numbers."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
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
from ingest_api.figures.export import FIRST_DATA_ROW, columns
from ingest_api.figures.models import QuarterlyReport
from ingest_api.main import create_app
from tests.ingest_api.figures.conftest import YEAR
from tests.security_helpers import add_account, session_headers

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


def test_xlsx_numbers_match_the_api_and_libreoffice_converts_it(
    client: TestClient, city_db: str, tmp_path: Path
) -> None:
    """The downloaded workbook holds the API's numbers and opens in LibreOffice (PDF)."""
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
    assert rows[0][6:] == [c.flat for c in cols]
    got = [[("" if v == "" else float(v)) for v in r[6:]] for r in rows[1:]]
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
