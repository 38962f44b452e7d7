"""Import of members and programs lists: validation report, all or nothing, idempotent."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from openpyxl import Workbook
from psycopg import sql

from broker.hashing import credential_hash
from broker.keys import facility_key
from ingest_api.core.security import Role
from ingest_api.registry import store
from ingest_api.registry.importer import import_file
from ingest_api.registry.models import Facility
from tests.security_helpers import CIPHER, principal

KEY = b"registry-test-key-0123456789abcd"
PROGRAM_HEADERS = [
    "프로그램코드",
    "프로그램명",
    "기능",
    "사업분야",
    "단위사업",
    "요금",
    "산출기준",
    "연도",
    "목표실인원",
    "목표연인원",
    "목표건수",
]
PROGRAMS = [
    [
        "B-MEAL",
        "경로식당 점심",
        "서비스제공",
        "지역사회보호",
        "급식지원서비스",
        "무료",
        "",
        2026,
        300,
        60000,
        250,
    ],
    [
        "B-PRAC",
        "사회복지현장실습",
        "서비스제공",
        "교육사업",
        "현장실습",
        "무료",
        "practicum",
        2026,
        None,
        480,
        40,
    ],
    [
        "B-CASE",
        "사례관리",
        "사례관리",
        "사례관리",
        "사례관리사업",
        "무료",
        "consultation",
        2026,
        30,
        400,
        400,
    ],
]
MEMBER_HEADERS = [
    "회원번호",
    "성명",
    "성별",
    "생년월일",
    "수급자",
    "등록장애",
    "연락처",
    "행정동",
    "주요욕구",
    "상태",
    "회원카드",
    "이용프로그램",
    "개인정보동의일",
]


def _members(n: int) -> list[list[Any]]:
    """n good member rows."""
    return [
        [
            f"B-M{i:05d}",
            f"김순{i}",
            "여" if i % 2 else "남",
            date(1940 + i % 30, 1 + i % 12, 1),
            "Y" if i % 5 == 0 else "N",
            "N",
            f"010-1234-{i:04d}",
            "우만1동",
            "식사,안부",
            "이용중",
            f"04:A2:{i // 256:02X}:{i % 256:02X}:11",
            "B-MEAL",
            "2024-03-02",
        ]
        for i in range(1, n + 1)
    ]


def write_xlsx(path: Path, headers: list[str], rows: list[list[Any]]) -> Path:
    """An .xlsx as staff keep their lists."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def write_csv(path: Path, headers: list[str], rows: list[list[Any]], encoding: str) -> Path:
    """A .csv as Excel saves it."""
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in r] for r in rows])
    return path


@pytest.fixture
def conn(database_url: str) -> Any:
    """A connection to a registry with center B."""
    with psycopg.connect(database_url) as c:
        store.upsert_facility(c, facility=Facility(facility_id="B", name="한마음종합사회복지관"))
        c.commit()
        yield c


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[Any]]:
    """Every registry table's rows, to prove an import changed nothing."""
    tables = (
        "programs",
        "program_targets",
        "persons",
        "members",
        "member_consents",
        "member_credentials",
        "enrolments",
        "import_batches",
        "audit_log",
    )
    return {
        t: conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(t))
        ).fetchall()
        for t in tables
    }


def _import(conn: Any, kind: Any, path: Path, **kw: Any) -> Any:
    """Run an import as staff member 'kim'."""
    return import_file(
        conn, kind=kind, path=path, facility_id="B", key=KEY, cipher=CIPHER, actor="kim", **kw
    )


def test_programs_then_members_import_and_reimport_changes_nothing(
    conn: Any, tmp_path: Path
) -> None:
    """A good file imports; the same file again reports no change and leaves every row alone."""
    programs = write_xlsx(tmp_path / "programs.xlsx", PROGRAM_HEADERS, PROGRAMS)
    result = _import(conn, "programs", programs)
    assert (result.ok, result.inserted, result.issues) == (True, 3, [])
    members = write_xlsx(tmp_path / "members.xlsx", MEMBER_HEADERS, _members(40))
    ticks: list[int] = []
    result = _import(conn, "members", members, progress=ticks.append)
    assert (result.ok, result.inserted, result.updated) == (True, 40, 0)
    assert sum(ticks) == 80  # every row validated and written
    conn.commit()
    before = _snapshot(conn)
    again = _import(conn, "members", members)
    assert (again.ok, again.inserted, again.updated, again.unchanged) == (True, 0, 0, 40)
    assert _import(conn, "programs", programs).unchanged == 3
    conn.commit()
    assert _snapshot(conn) == before
    # The import was audited once, the card identifiers stored only as keyed hashes.
    assert [r[0] for r in conn.execute("SELECT action FROM audit_log")] == ["import", "import"]
    stored = {r[0] for r in conn.execute("SELECT credential_hash FROM member_credentials")}
    # Hashed under facility B's own key (version 1), not the center's master key.
    b_key = facility_key(KEY, facility_id="B", version=1).encode()
    assert credential_hash("04A2000111", key=b_key) in stored
    assert credential_hash("04A2000111", key=KEY) not in stored
    dump = str(conn.execute("SELECT * FROM member_credentials").fetchall())
    assert "04A20001" not in dump.upper()
    targets = conn.execute(
        "SELECT unique_persons, person_visits, cases FROM program_targets"
        " WHERE program_id = 'B-PRAC'"
    ).fetchone()
    assert targets == (None, 480, 40)


def test_a_changed_row_is_an_update(conn: Any, tmp_path: Path) -> None:
    """Re-importing with one member's phone changed updates exactly that member."""
    _import(conn, "programs", write_xlsx(tmp_path / "p.xlsx", PROGRAM_HEADERS, PROGRAMS))
    rows = _members(5)
    _import(conn, "members", write_xlsx(tmp_path / "m.xlsx", MEMBER_HEADERS, rows))
    rows[2][6] = "010-9999-0000"
    result = _import(conn, "members", write_xlsx(tmp_path / "m2.xlsx", MEMBER_HEADERS, rows))
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 4)
    sensitive = store.get_sensitive(
        conn, member_ref="B-M00003", scope=principal(Role.CENTER_MANAGER, "B"), cipher=CIPHER
    )
    assert sensitive is not None
    assert sensitive.phone == "010-9999-0000"


def test_bad_rows_are_all_named_and_nothing_is_written(conn: Any, tmp_path: Path) -> None:
    """Every bad cell is reported with row, column and cell; the good rows are not imported."""
    _import(conn, "programs", write_xlsx(tmp_path / "p.xlsx", PROGRAM_HEADERS, PROGRAMS))
    conn.commit()
    rows = _members(6)
    rows[1][2] = "모름"  # gender, row 3
    rows[2][3] = "1950-13-45"  # birth date, row 4
    rows[3][11] = "B-NOPE"  # program, row 5
    rows[4][0] = rows[0][0]  # duplicate member number, row 6
    rows[5][10] = rows[0][10]  # the same card as row 2, row 7
    before = _snapshot(conn)
    result = _import(conn, "members", write_xlsx(tmp_path / "bad.xlsx", MEMBER_HEADERS, rows))
    assert not result.ok
    found = {(i.row, i.column, i.cell) for i in result.issues}
    assert found == {
        (3, "성별", "C3"),
        (4, "생년월일", "D4"),
        (5, "이용프로그램", "L5"),
        (6, "회원번호", "A6"),
        (7, "회원카드", "K7"),
    }
    assert all(i.message for i in result.issues)
    assert _snapshot(conn) == before


def test_csv_in_cp949_and_unknown_columns(conn: Any, tmp_path: Path) -> None:
    """CSV saved by Korean Excel (CP949) imports; an unknown or missing column is reported."""
    _import(conn, "programs", write_csv(tmp_path / "p.csv", PROGRAM_HEADERS, PROGRAMS, "cp949"))
    good = write_csv(tmp_path / "m.csv", MEMBER_HEADERS, _members(3), "cp949")
    assert _import(conn, "members", good).inserted == 3
    bad = write_csv(tmp_path / "x.csv", ["회원번호", "취미"], [["B-M1", "바둑"]], "utf-8-sig")
    result = _import(conn, "members", bad)
    assert not result.ok
    assert {(i.column, i.message) for i in result.issues} == {
        ("취미", "unknown column"),
        ("display_name", "required column is missing"),
    }


def test_dry_run_validates_without_writing(conn: Any, tmp_path: Path) -> None:
    """A dry run reports what would happen and writes nothing."""
    _import(conn, "programs", write_xlsx(tmp_path / "p.xlsx", PROGRAM_HEADERS, PROGRAMS))
    conn.commit()
    before = _snapshot(conn)
    path = write_xlsx(tmp_path / "m.xlsx", MEMBER_HEADERS, _members(4))
    result = _import(conn, "members", path, dry_run=True)
    assert (result.ok, result.inserted) == (True, 4)
    assert _snapshot(conn) == before


def test_the_report_forms_fields_import_with_korean_headers(conn: Any, tmp_path: Path) -> None:
    """Team, person in charge, indicator, operating form and targets by gender, as the
    centers' forms name them, reach the registry and its API model."""
    headers = [
        *PROGRAM_HEADERS,
        "팀명",
        "담당자",
        "실적 산정 지표",
        "운영형태",
        "목표남",
        "목표여",
    ]
    rows = [
        [*PROGRAMS[0], "지역복지팀", "김은정", "경로식당 식사 이용 연인원", "상시", 120, 180],
        [*PROGRAMS[1], "기획운영팀", "정하늘", "실습생 1인 1일 = 연인원 1", "정기", None, None],
    ]
    result = _import(conn, "programs", write_xlsx(tmp_path / "forms.xlsx", headers, rows))
    assert (result.ok, result.inserted, result.issues) == (True, 2, [])
    found = {p.program_id: p for p in store.list_programs(conn, facility_id="B", year=2026)}
    meal = found["B-MEAL"]
    assert (meal.team, meal.manager, meal.indicator, meal.operating_form) == (
        "지역복지팀",
        "김은정",
        "경로식당 식사 이용 연인원",
        "상시",
    )
    assert (meal.targets.unique_persons_male, meal.targets.unique_persons_female) == (120, 180)
    assert found["B-PRAC"].targets.unique_persons_male is None
    # The same file again changes nothing; a changed manager is an update.
    again = _import(conn, "programs", write_xlsx(tmp_path / "forms2.xlsx", headers, rows))
    assert (again.unchanged, again.updated) == (2, 0)
    rows[0][headers.index("담당자")] = "박서연"
    changed = _import(conn, "programs", write_xlsx(tmp_path / "forms3.xlsx", headers, rows))
    assert (changed.updated, changed.unchanged) == (1, 1)
