"""`welfare report` and `welfare import` from the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msoffcrypto
import psycopg
import pyotp
import pytest
import pyzipper
from openpyxl import load_workbook

from ingest_api.core.security import Role
from ingest_api.figures.export import FIRST_DATA_ROW, FIRST_FIGURE_COLUMN, columns
from ingest_api.figures.models import QuarterlyReport
from ingest_api.registry import store
from ingest_api.registry.models import Facility
from tests.ingest_api.figures.conftest import YEAR, fresh_database
from tests.security_helpers import DATA_KEY, PASSWORD, add_account
from welfare.cli import main

FILE_PASSWORD = "cli-file-password-9"


class Typist:
    """What a person types at the command's prompts (passwords hidden, codes not)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Answer getpass and input from queues."""
        self.secrets: list[str] = []
        self.lines: list[str] = []
        monkeypatch.setattr("getpass.getpass", lambda prompt="": self.secrets.pop(0))
        monkeypatch.setattr("builtins.input", lambda prompt="": self.lines.pop(0))

    def will_type(self, *secrets: str, code: str | None = None) -> None:
        """The next answers: hidden ones in order, and a second-factor code."""
        self.secrets.extend(secrets)
        if code is not None:
            self.lines.append(code)


@pytest.fixture
def typist(monkeypatch: pytest.MonkeyPatch) -> Typist:
    """Scripted answers to the prompts."""
    return Typist(monkeypatch)


def _open_zip(path: Path) -> bytes:
    """The one file inside an AES zip."""
    with pyzipper.AESZipFile(path) as archive:
        archive.setpassword(FILE_PASSWORD.encode())
        (name,) = archive.namelist()
        content: bytes = archive.read(name)
        return content


def test_report_command_writes_xlsx_csv_and_json(
    city_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    typist: Typist,
) -> None:
    """The three formats carry the same numbers for center B's fourth quarter.

    The command acts as a named user: it asks for the account's password (and the second
    factor of a manager), checks the account may take B's report, and writes every format
    encrypted with the file password typed twice. The download is audited with its reason.
    """
    monkeypatch.setenv("DATABASE_URL", city_db)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    staff = add_account(city_db, "cli.lee", Role.CENTER_STAFF, facility_id="B")
    manager = add_account(city_db, "cli.choi", Role.CENTER_MANAGER, facility_id="B")
    assert manager.totp_secret is not None
    args = ["report", "--facility", "B", "--year", str(YEAR), "--quarter", "4", "--reason", "제출"]
    typist.will_type(PASSWORD, FILE_PASSWORD, FILE_PASSWORD)
    assert (
        main(
            [*args, "--user", staff.username, "--format", "json", "--out", str(tmp_path / "r.zip")]
        )
        == 0
    )
    typist.will_type(
        PASSWORD, FILE_PASSWORD, FILE_PASSWORD, code=pyotp.TOTP(manager.totp_secret).now()
    )
    assert (
        main(
            [
                *args,
                "--user",
                manager.username,
                "--format",
                "xlsx",
                "--out",
                str(tmp_path / "r.xlsx"),
            ]
        )
        == 0
    )
    typist.will_type(PASSWORD, FILE_PASSWORD, FILE_PASSWORD)
    assert (
        main([*args, "--user", staff.username, "--format", "csv", "--out", str(tmp_path / "c.zip")])
        == 0
    )
    report = QuarterlyReport.model_validate_json(_open_zip(tmp_path / "r.zip"))
    total = report.rows[0].periods[f"{YEAR}-Q4"].total
    office = msoffcrypto.OfficeFile(io.BytesIO((tmp_path / "r.xlsx").read_bytes()))
    office.load_key(password=FILE_PASSWORD)
    clear = io.BytesIO()
    office.decrypt(clear)
    ws = load_workbook(clear).worksheets[0]
    quarter = report.period_labels[f"{YEAR}-Q4"]
    at = next(
        i
        for i, c in enumerate(columns(report))
        if (c.top, c.group, c.leaf) == (quarter, "실인원", "계")
    )
    quarter_first = FIRST_FIGURE_COLUMN + at
    assert ws.cell(row=FIRST_DATA_ROW, column=quarter_first).value == total.unique_persons
    assert ws.cell(row=FIRST_DATA_ROW, column=quarter_first + 3).value == total.person_visits
    csv_lines = _open_zip(tmp_path / "c.zip").decode("utf-8-sig").splitlines()
    assert csv_lines[0].startswith("연번,구분,기능")
    assert csv_lines[1].split(",")[quarter_first - 1] == str(total.unique_persons)
    with psycopg.connect(city_db) as conn:
        audited = conn.execute(
            "SELECT actor, reason, detail->>'format' FROM audit_log WHERE action = 'download'"
            " AND subject = %s ORDER BY audit_id",
            (f"report:B:{YEAR}-Q4",),
        ).fetchall()
    assert audited == [
        ("cli.lee", "제출", "json"),
        ("cli.choi", "제출", "xlsx"),
        ("cli.lee", "제출", "csv"),
    ]
    # B's staff may not take the city's report, nor another center's; a wrong password stops.
    city = [
        "report",
        "--city",
        "--year",
        str(YEAR),
        "--quarter",
        "1",
        "--reason",
        "x1",
        "--out",
        str(tmp_path / "c.json"),
    ]
    typist.will_type(PASSWORD)
    with pytest.raises(SystemExit, match="may not"):
        main([*city, "--user", staff.username, "--format", "json"])
    typist.will_type("wrong-password-123")
    with pytest.raises(SystemExit, match="아이디 또는 비밀번호"):
        main([*args, "--user", staff.username, "--out", str(tmp_path / "x.xlsx")])
    assert not (tmp_path / "c.json").exists()
    assert not (tmp_path / "x.xlsx").exists()


def test_import_command_reports_bad_cells_and_imports_good_files(
    pg_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    typist: Typist,
) -> None:
    """A bad file exits 1 naming the cell; a good one imports; a re-import changes nothing.

    The command signs in as C's manager (password and second factor) for every run.
    """
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="C", name="늘푸른사회복지관"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", "cli-test-key-0123456789abcdef")
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    manager = add_account(url, "c.manager", Role.CENTER_MANAGER, facility_id="C")
    assert manager.totp_secret is not None
    totp = pyotp.TOTP(manager.totp_secret)

    def run(*args: str) -> int:
        """One run of `welfare import …` as C's manager, with the current code.

        A code works once; between runs the test forgets the used one, as the next 30-second
        step would.
        """
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE user_accounts SET totp_last_step = NULL")
        typist.will_type(PASSWORD, code=totp.now())
        return main([*args, "--user", "c.manager"])

    programs = tmp_path / "programs.csv"
    programs.write_text(
        "program_id,name,function,business_area,unit_business,fee_type\n"
        "C-MEAL,경로식당,서비스제공,지역사회보호,급식지원서비스,무료\n",
        encoding="utf-8",
    )
    assert run("import", "programs", str(programs), "--facility", "C") == 0
    members = tmp_path / "members.csv"
    members.write_text(
        "회원번호,성명,생년월일,이용프로그램\nC-1,김옥자,1939-02-30,C-MEAL\n", encoding="utf-8"
    )
    assert run("import", "members", str(members), "--facility", "C") == 1
    out = capsys.readouterr().out
    assert "C2 [생년월일] '1939-02-30': expected a date" in out
    members.write_text(
        "회원번호,성명,생년월일,이용프로그램\nC-1,김옥자,1939-02-28,C-MEAL\n", encoding="utf-8"
    )
    assert run("import", "members", str(members), "--facility", "C") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["inserted"] == 1
    assert run("import", "members", str(members), "--facility", "C") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["unchanged"] == 1
