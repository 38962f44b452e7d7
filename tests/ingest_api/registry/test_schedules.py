"""Schedules through the API and the spreadsheet import: overlaps and impossible times named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.main import create_app
from ingest_api.registry.importer import import_file
from tests.ingest_api.registry.test_import import write_xlsx
from tests.ingest_api.registry.test_registry_api import PROGRAM
from tests.security_helpers import DATA_KEY, add_account, session_headers

KEY = b"schedule-test-key-0123456789abcd"
YOGA = PROGRAM | {"program_id": "E-YOGA", "name": "건강요가", "kind": "class", "place": "강당"}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """Center E with a meal hall (a meal program) and a yoga class; E's manager signed in."""
    app = create_app(
        Settings(database_url=database_url, refresh_interval_s=0, data_key=DATA_KEY),
        consume=False,
    )
    add_account(database_url, "city.kim", Role.CITY_ADMIN)
    with TestClient(app) as c:
        c.put(
            "/api/v1/registry/facilities/E",
            json={"facility_id": "E", "name": "푸른마을"},
            headers=session_headers(database_url, "city.kim"),
        ).raise_for_status()
        add_account(database_url, "lee.sw", Role.CENTER_MANAGER, facility_id="E")
        c.headers.update(session_headers(database_url, "lee.sw"))
        assert c.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM | {"kind": "meal"}).is_success
        assert c.put("/api/v1/registry/programs/E-YOGA", json=YOGA).is_success
        yield c


def _session(weekday: int, starts: str, ends: str, place: str = "강당") -> dict[str, object]:
    """A weekly session document."""
    return {"weekday": weekday, "starts": starts, "ends": ends, "place": place, "capacity": 20}


def test_a_schedule_is_stored_and_read_back_with_its_cancelled_days(client: TestClient) -> None:
    """Weekly sessions and cancelled days replace what was there; the program's kind shows."""
    body = {
        "sessions": [_session(2, "10:00", "11:00"), _session(4, "10:00", "11:00")],
        "exceptions": [{"on_date": "2026-12-24", "reason": "강사 휴가"}],
    }
    url = "/api/v1/registry/programs/E-YOGA/schedule"
    assert client.put(url, json=body).json() == {"change": "updated"}
    assert client.put(url, json=body).json() == {"change": "unchanged"}
    stored = client.get(url).json()
    assert stored["kind"] == "class"
    assert [(s["weekday"], s["starts"]) for s in stored["sessions"]] == [
        (2, "10:00:00"),
        (4, "10:00:00"),
    ]
    assert stored["exceptions"] == [{"on_date": "2026-12-24", "reason": "강사 휴가"}]
    assert client.get("/api/v1/registry/programs/E-NONE/schedule").status_code == 404
    assert client.put("/api/v1/registry/programs/E-NONE/schedule", json=body).status_code == 404


def test_overlaps_and_impossible_times_are_refused_with_both_sessions_named(
    client: TestClient,
) -> None:
    """Within a program, and two programs in one place at once; ends before starts."""
    url = "/api/v1/registry/programs/E-YOGA/schedule"
    overlap = client.put(
        url, json={"sessions": [_session(2, "10:00", "11:00"), _session(2, "10:30", "12:00")]}
    )
    assert overlap.status_code == 422
    (problem,) = overlap.json()["detail"]
    assert problem["loc"] == ["body", "sessions", 1]
    assert (
        problem["msg"] == "화 10:30–12:00 (강당) overlaps 화 10:00–11:00 (강당) of the same program"
    )
    backwards = client.put(url, json={"sessions": [_session(3, "11:00", "10:00")]})
    assert backwards.status_code == 422
    assert "수 11:00–10:00: ends (10:00) must be after it starts" in backwards.text
    for bad in ("25:00", "10:75"):
        refused = client.put(url, json={"sessions": [_session(3, "10:00", bad)]})
        assert refused.status_code == 422
    assert client.put(url, json={"sessions": [_session(8, "10:00", "11:00")]}).status_code == 422
    # The meal hall's program in the same room at the same time: both named.
    meal = client.put(
        "/api/v1/registry/programs/E-MEAL/schedule",
        json={"sessions": [_session(1, "11:30", "13:00")]},
    )
    assert meal.is_success
    clash = client.put(url, json={"sessions": [_session(1, "12:30", "14:00")]})
    assert clash.status_code == 422
    assert clash.json()["detail"][0]["msg"] == (
        "월 12:30–14:00 (강당) overlaps E-MEAL 월 11:30–13:00 in the same place"
    )
    # Touching ends are not an overlap.
    assert client.put(url, json={"sessions": [_session(1, "13:00", "14:00")]}).json() == {
        "change": "updated"
    }


def test_facility_closures_are_set_listed_and_removed(
    client: TestClient, database_url: str
) -> None:
    """A holiday of the whole facility; an unknown facility or an open day answers 404.

    E's manager may not close another center (403); the city's administrator may, and hears
    404 for a facility that does not exist.
    """
    url = "/api/v1/registry/facilities/E/closures/2026-12-25"
    assert client.put(url, json={"reason": "성탄절"}).json() == {"change": "updated"}
    assert client.get("/api/v1/registry/facilities/E/closures").json() == [
        {"facility_id": "E", "on_date": "2026-12-25", "reason": "성탄절"}
    ]
    assert client.delete(url).json() == {"removed": True}
    assert client.delete(url).status_code == 404
    other = "/api/v1/registry/facilities/Z/closures/2026-12-25"
    assert client.put(other, json={}).status_code == 403
    city = session_headers(database_url, "city.kim")
    assert client.put(other, json={}, headers=city).status_code == 404


def test_the_schedule_import_names_every_bad_cell_and_overlap_then_applies_all(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """Korean headers, weekday lists and ranges, Korean times; all or nothing."""
    headers = ["프로그램코드", "요일", "시작", "종료", "장소", "정원"]
    bad = write_xlsx(
        tmp_path / "bad.xlsx",
        headers,
        [
            ["E-YOGA", "월,수", "10:00", "11:00", "강당", 20],
            ["E-YOGA", "수", "10시 30분", "12:00", "강당", 20],  # overlaps row 2's Wednesday
            ["E-YOGA", "금", "오후 2:00", "13:00", "강당", 20],  # ends before it starts
            ["E-YOGA", "화", "25:00", "26:00", "강당", 20],  # not a time of day
            ["E-YOGA", "매일", "10:00", "11:00", "강당", 20],  # not a weekday
            ["E-NOPE", "월", "10:00", "11:00", "강당", 20],  # not a program of E
        ],
    )
    with psycopg.connect(database_url) as conn:
        result = import_file(conn, kind="schedule", path=bad, facility_id="E", key=KEY, actor="kim")
    assert not result.ok
    found = {(i.cell, i.message.split(":")[0]) for i in result.issues}
    assert ("B3", "E-YOGA") in found  # the overlap, named on the later row
    assert any(i.row == 3 and "overlaps 수 10:00–11:00" in i.message for i in result.issues)
    assert any(i.row == 4 and "must be after it starts" in i.message for i in result.issues)
    assert any(i.cell == "C5" and "not a time of day" in i.message for i in result.issues)
    assert any(i.cell == "B6" and "not a weekday" in i.message for i in result.issues)
    assert any(i.cell == "A7" and "unknown program" in i.message for i in result.issues)
    assert client.get("/api/v1/registry/programs/E-YOGA/schedule").json()["sessions"] == []

    good = write_xlsx(
        tmp_path / "good.xlsx",
        headers,
        [
            ["E-YOGA", "월~수", "10:00", "11:00", "강당", 20],
            ["E-MEAL", "월-금", "1130", "13:00", "식당", 200],
        ],
    )
    with psycopg.connect(database_url) as conn:
        result = import_file(
            conn, kind="schedule", path=good, facility_id="E", key=KEY, actor="kim"
        )
    assert (result.ok, result.inserted, result.issues) == (True, 2, [])
    meal = client.get("/api/v1/registry/programs/E-MEAL/schedule").json()
    assert [s["weekday"] for s in meal["sessions"]] == [1, 2, 3, 4, 5]
    assert meal["sessions"][0]["starts"] == "11:30:00"
    with psycopg.connect(database_url) as conn:
        again = import_file(conn, kind="schedule", path=good, facility_id="E", key=KEY, actor="kim")
    assert (again.ok, again.unchanged) == (True, 2)


def test_the_closures_import_sets_facility_and_program_days(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    """A blank program code closes the whole facility; a code cancels that program's day."""
    path = write_xlsx(
        tmp_path / "closures.xlsx",
        ["날짜", "프로그램코드", "사유"],
        [
            ["2026-12-25", "", "성탄절"],
            ["2026.12.31", "E-YOGA", "종강"],
            ["2026-12-25", "", "중복"],
        ],
    )
    with psycopg.connect(database_url) as conn:
        refused = import_file(conn, kind="closures", path=path, facility_id="E", key=KEY, actor="k")
    assert [(i.row, i.message) for i in refused.issues] == [(4, "duplicate of row 2")]
    path = write_xlsx(
        tmp_path / "closures2.xlsx",
        ["날짜", "프로그램코드", "사유"],
        [["2026-12-25", "", "성탄절"], ["2026.12.31", "E-YOGA", "종강"]],
    )
    with psycopg.connect(database_url) as conn:
        done = import_file(conn, kind="closures", path=path, facility_id="E", key=KEY, actor="k")
    assert (done.ok, done.inserted) == (True, 2)
    assert [c["on_date"] for c in client.get("/api/v1/registry/facilities/E/closures").json()] == [
        "2026-12-25"
    ]
    yoga = client.get("/api/v1/registry/programs/E-YOGA/schedule").json()
    assert yoga["exceptions"] == [{"on_date": "2026-12-31", "reason": "종강"}]
