"""The staff overview page, rendered by a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
import uvicorn

from ingest_api.core.config import IngestSettings
from ingest_api.db.writes import insert_events
from ingest_api.main import create_app
from ingest_api.validation import EventRow
from welfare.ids import uuid7
from welfare.services.ports import free_port

DAY = date(2026, 11, 20)


def chromium() -> str:
    """The Chromium binary (Debian's package)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: apt-get install -y chromium (make test does)")
    return found


def _headless(url: str, *extra: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium the way this machine allows (no sandbox as root, no network)."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture
def served(database_url: str) -> Iterator[str]:
    """The central app on a free port with a few events of one day."""
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    rows = [
        EventRow(
            str(uuid7(at)),
            at,
            "B",
            "meal-1",
            DAY,
            "B-MEAL",
            f"B-M{i % 3}",
            "card",
            "accepted",
            i + 1,
            "v1",
            None,
        )
        for i in range(5)
    ]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        insert_events(cur, rows=rows)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(IngestSettings(database_url=database_url), consume=False),
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
    """Unique persons 3, person-visits 5 for center B, in a page a browser renders."""
    result = _headless(f"{served}/?day={DAY}", "--dump-dom", profile=tmp_path / "p1")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "출석 실적 현황" in dom
    cells = [c.split(">")[-1] for c in dom.split("</td>")]
    assert cells[0:4] == ["B", "(기관 합계)", "3", "5"]
    shot = tmp_path / "overview.png"
    result = _headless(
        f"{served}/?day={DAY}",
        f"--screenshot={shot}",
        "--window-size=1024,600",
        profile=tmp_path / "p2",
    )
    assert shot.exists()
    assert shot.stat().st_size > 5_000  # a rendered page, not an empty canvas
