"""The staff overview page, rendered by a real headless Chromium after signing in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from broker.ids import uuid7
from broker.vocabulary import FeeType, Function
from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.figures import rollup
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.main import create_app
from ingest_api.registry import store
from ingest_api.registry.models import Facility, Program
from tests.browser import browser, serve
from tests.security_helpers import PASSWORD, add_account

DAY = date(2026, 11, 20)


def _event(n: int, program: str, member: str | None, *, outcome: str = "accepted") -> EventRow:
    """The n-th decision of a lunch at B's meal hall."""
    at = datetime(2026, 11, 20, 3, 0, n, tzinfo=UTC)
    method = "staff" if n == 3 else "card"
    return EventRow(
        uuid7(at), at, "B", "meal-1", DAY, program, member, method, outcome, None, "v1", None
    )


@pytest.fixture
def served(database_url: str) -> Iterator[str]:
    """The central app on a free port with one lunch at B, counted by its programs' rules."""
    rows = [
        _event(0, "B-MEAL", "B-M0"),
        _event(1, "B-MEAL", "B-M1"),
        _event(2, "B-MEAL", "B-M2"),
        _event(3, "B-MEAL", "B-M0"),  # a staff override: a second meal, still one visit
        _event(4, "B-FEST", "B-M3"),  # a one-off public event: excluded from the figures
        _event(5, "B-MEAL", None, outcome="unknown_credential"),  # refused: never counted
    ]
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음"))
        for program_id, rule in (("B-MEAL", "attendance"), ("B-FEST", "excluded")):
            program = Program(
                program_id=program_id,
                facility_id="B",
                name=program_id,
                function=Function.SERVICE_PROVISION,
                business_area="지역사회보호",
                unit_business="급식지원서비스",
                fee_type=FeeType.FREE,
                rule_id=rule,
            )
            store.upsert_program(conn, program=program)
        with conn.cursor() as cur:
            insert_events(cur, rows=rows)
        rollup.refresh(conn)
    add_account(database_url, "b.staff", Role.CENTER_STAFF, facility_id="B")
    settings = Settings(database_url=database_url, refresh_interval_s=0)
    with serve(create_app(settings, consume=False)) as base:
        yield base


def test_overview_page_shows_the_days_figures(served: str, tmp_path: Path) -> None:
    """The figures engine's numbers for center B, in a page a browser renders.

    Five accepted taps, but by the programs' counting rules: 3 unique persons, 3 person-visits
    (one meal a day each, the override included) and 1 case (one session day); the excluded
    event and the refused tap do not count.
    """
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1024, "height": 600})
        page.goto(f"{served}/?day={DAY}")
        assert page.url.startswith(f"{served}/login?next=")  # no session: sign in first
        page.fill("#username", "b.staff")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        page.wait_for_url(f"{served}/?day={DAY}")
        assert "출석 실적 현황" in page.inner_text("h1")
        cells = [c.strip() for c in page.locator("td").all_inner_texts()]
        assert cells[0:5] == ["B", "(기관 합계)", "3", "3", "1"]
        assert "B-FEST" not in page.content()
        shot = tmp_path / "overview.png"
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 5_000  # a rendered page, not an empty canvas
