"""The staff overview page, rendered by a real headless Chromium."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
import uvicorn

from broker.ids import uuid7
from broker.vocabulary import FeeType, Function
from ingest_api.core.config import Settings
from ingest_api.figures import rollup
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.main import create_app
from ingest_api.registry import store
from ingest_api.registry.models import Facility, Program
from welfare.services.chromium import HEADLESS_ARGS, find_chromium
from welfare.services.ports import free_port

DAY = date(2026, 11, 20)


def chromium() -> str:
    """The Chromium binary (Debian's package)."""
    try:
        return find_chromium()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} (make test does)")


def _headless(url: str, *extra: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium the way this machine allows (no sandbox as root, no network)."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            *HEADLESS_ARGS,
            f"--user-data-dir={profile}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


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
    port = free_port()
    settings = Settings(database_url=database_url, refresh_interval_s=0)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, consume=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_overview_page_shows_the_days_figures(served: str, tmp_path: Path) -> None:
    """The figures engine's numbers for center B, in a page a browser renders.

    Five accepted taps, but by the programs' counting rules: 3 unique persons, 3 person-visits
    (one meal a day each, the override included) and 1 case (one session day); the excluded
    event and the refused tap do not count.
    """
    result = _headless(f"{served}/?day={DAY}", "--dump-dom", profile=tmp_path / "p1")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "출석 실적 현황" in dom
    cells = [c.split(">")[-1] for c in dom.split("</td>")]
    assert cells[0:5] == ["B", "(기관 합계)", "3", "3", "1"]
    assert "B-FEST" not in dom
    shot = tmp_path / "overview.png"
    result = _headless(
        f"{served}/?day={DAY}",
        f"--screenshot={shot}",
        "--window-size=1024,600",
        profile=tmp_path / "p2",
    )
    assert shot.exists()
    assert shot.stat().st_size > 5_000  # a rendered page, not an empty canvas
