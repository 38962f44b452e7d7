"""One definition of what counts: the overview page, the JSON API and the quarterly report agree.

A database holding one service day of the five centers: for every center, the overview page,
GET /api/v1/figures/daily and the quarterly report's month column show the same unique persons
and person-visits, and those equal a count written here from the raw rows and the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.figures import rollup
from ingest_api.main import create_app
from tests.helpers import count_by_rules
from tests.ingest_api.figures.conftest import KEY, YEAR, fresh_database
from tests.security_helpers import CIPHER, add_account, session_headers
from welfare.sample.city import build_city, load_events, load_registry

DAY = date(YEAR, 5, 13)  # a Wednesday: meals, classes, case work and a network meeting


@pytest.fixture(scope="module")
def one_day(pg_server: Any) -> str:
    """A database with the registry and exactly one day of events."""
    sample = build_city(year=YEAR, members_per_center=12)
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        load_registry(conn, sample=sample, key=KEY, cipher=CIPHER)
        # Contacts are counted too, but on their own days: keep only this day's.
        conn.execute("DELETE FROM community_contacts WHERE service_date <> %s", (DAY,))
        load_events(conn, events=[e for e in sample.events if e[4] == DAY])
        rollup.refresh(conn)
    add_account(url, "city.han", Role.CITY_ADMIN)
    return url


@pytest.fixture
def client(one_day: str) -> Iterator[TestClient]:
    """The central app over that day, the city's administrator signed in."""
    app = create_app(Settings(database_url=one_day, refresh_interval_s=0), consume=False)
    with TestClient(app) as c:
        c.headers.update(session_headers(one_day, "city.han"))
        yield c


def _page_totals(html: str) -> dict[str, tuple[int, int]]:
    """Each center's (unique persons, person-visits) as the overview page shows them."""
    cells = [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    ]
    found = {}
    for i, cell in enumerate(cells):
        if cell == "(기관 합계)":
            found[cells[i - 1]] = (int(cells[i + 1]), int(cells[i + 2]))
    return found


def test_page_api_and_report_show_the_same_figures(client: TestClient, one_day: str) -> None:
    """For one day and each center: page == API == report's month == an independent count."""
    expected = {f: v for (f, p), v in count_by_rules(one_day).items() if p is None}
    assert len(expected) == 5
    assert all(u > 0 for u, _ in expected.values())

    api = client.get("/api/v1/figures/daily", params={"start": DAY.isoformat()})
    assert api.status_code == 200, api.text
    api_totals = {
        r["facility_id"]: (r["unique_persons"], r["person_visits"])
        for r in api.json()
        if r["program_id"] is None
    }
    page = client.get("/", params={"day": DAY.isoformat()})
    assert page.status_code == 200
    report_totals = {}
    for facility in expected:
        report = client.get(
            "/api/v1/figures/report",
            params={"year": YEAR, "quarter": 2, "facility_id": facility},
        )
        assert report.status_code == 200, report.text
        month = next(r for r in report.json()["rows"] if r["level"] == "total")["periods"][
            f"{YEAR}-05"
        ]["total"]
        report_totals[facility] = (month["unique_persons"], month["person_visits"])

    assert api_totals == expected
    assert _page_totals(page.text) == expected
    assert report_totals == expected


def test_reading_figures_never_writes(client: TestClient, one_day: str) -> None:
    """GET requests leave the rollup's pending work alone: only a refresh (a POST) does it.

    Checked through the dirty markers of plain PostgreSQL; on TimescaleDB the continuous
    aggregates track changes themselves and the GETs are only required to answer.
    """
    with psycopg.connect(one_day) as conn:
        markers = conn.execute("SELECT to_regclass('figures_dirty') IS NOT NULL").fetchone()
        if markers == (True,):
            conn.execute(
                "INSERT INTO figures_dirty (facility_id, service_date) VALUES ('B', %s)", (DAY,)
            )
    for path, params in (
        ("/", {"day": DAY.isoformat()}),
        ("/api/v1/figures/daily", {"start": DAY.isoformat()}),
        ("/api/v1/figures/report", {"year": YEAR, "quarter": 2}),
        ("/api/v1/figures/query", {"first_month": f"{YEAR}-05", "last_month": f"{YEAR}-05"}),
        ("/api/v1/figures/statistics", {"first_month": f"{YEAR}-05", "last_month": f"{YEAR}-05"}),
    ):
        assert client.get(path, params=params).status_code == 200, path
    if markers != (True,):
        return
    with psycopg.connect(one_day) as conn:
        pending = conn.execute("SELECT count(*) FROM figures_dirty").fetchone()
    assert pending == (1,)
    assert client.post("/api/v1/figures/refresh").status_code == 200
    with psycopg.connect(one_day) as conn:
        assert conn.execute("SELECT count(*) FROM figures_dirty").fetchone() == (0,)
