"""The operator dashboard in a real headless Chromium (Playwright driving Debian's chromium),
over a recorded day of the sample city's eight kiosks; its API; its screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ingest_api.core.config import FleetSettings
from ingest_api.core.sessions import CSRF_HEADER
from ingest_api.fleet.store import Heartbeat, record_heartbeats
from tests.ingest_api.fleet.conftest import health
from tests.security_helpers import session_headers
from welfare.fleet import OPERATOR, SHOTS, browser, open_page, operator_session, screenshots, serve
from welfare.sample.fleet import seed_fleet

ROOT = Path(__file__).parents[3]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def seeded(database_url: str) -> str:
    """A database holding the sample day, recorded up to now."""
    with psycopg.connect(database_url) as conn:
        seed_fleet(conn, now=datetime.now(UTC), rules=FleetSettings())
    return database_url


@pytest.fixture
def base(seeded: str) -> Iterator[str]:
    """The central service over the sample day."""
    with serve(seeded) as url:
        yield url


@pytest.fixture
def session(seeded: str) -> str:
    """A signed-in operator's session cookie (the dashboard is for operators only)."""
    return operator_session(seeded)[0]


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Headless Chromium."""
    with browser() as started:
        yield started


def _snapshot(url: str) -> tuple[object, ...]:
    """Everything the fleet's writes touch, summed up (to prove GET requests write nothing)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM device_status), "
            "(SELECT max(last_seen_at) FROM device_status), "
            "(SELECT count(*) FROM device_heartbeats), (SELECT count(*) FROM device_state_log), "
            "(SELECT count(*) FROM device_alerts), (SELECT max(updated_at) FROM device_alerts), "
            "(SELECT count(*) FILTER (WHERE acknowledged_at IS NOT NULL) FROM device_alerts)"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_fleet_page_shows_the_fleet_refreshes_itself_and_takes_acknowledgements(
    base: str, seeded: str, chromium: Any, session: str
) -> None:
    """By facility: state, backlog, roster lag, alerts; updates without reload; 확인 works."""
    page = open_page(chromium, f"{base}/fleet", session=session)
    assert page.inner_text("h1") == "키오스크 운영 현황"
    counts = {
        name: page.inner_text(f'[data-count="{name}"]') for name in ("online", "offline", "alerts")
    }
    assert counts == {"online": "7", "offline": "1", "alerts": "6"}
    assert page.get_attribute("#device-C-hall-1", "data-state") == "offline"
    assert "1개 뒤" in page.inner_text("#device-D-sports-1")  # the roster behind by one version
    assert page.inner_text("#device-D-meal-1 td:nth-child(4)").startswith("200")
    text = page.inner_text("body")
    # Devices, counts, versions and times only: no member reference, name or card.
    assert "-S0" not in text
    assert "홍길동" not in text

    # The silent kiosk speaks again: the page shows it online by itself, without a reload.
    page.evaluate("window.notReloaded = true")
    with psycopg.connect(seeded) as conn, conn.cursor() as cur:
        now = datetime.now(UTC)
        record_heartbeats(
            cur, beats=[Heartbeat(health("hall-1", facility="C", at=now, interval_s=120), now)]
        )
    page.wait_for_selector('#device-C-hall-1[data-state="online"]', timeout=15_000)
    assert page.inner_text('[data-count="offline"]') == "0"
    assert page.evaluate("window.notReloaded") is True

    # Acknowledging is recorded with the signed-in operator's name.
    assert _acknowledged_by(seeded, "B", "meal-2") is None
    row = page.locator("#alert-list-row-B-meal-2, tr:has-text('B/meal-2')").first
    row.locator("button.ack").click()
    # (A locator, not wait_for_function: the pages' CSP forbids eval, which that would use.)
    page.locator("main").get_by_text(OPERATOR).first.wait_for(timeout=15_000)
    assert _acknowledged_by(seeded, "B", "meal-2") == OPERATOR


def _account(url: str) -> bool:
    """Whether the sample operator's account exists yet."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT 1 FROM user_accounts WHERE username = %s", (OPERATOR,)
        ).fetchone()
    return row is not None


def _acknowledged_by(url: str, facility_id: str, device_id: str) -> str | None:
    """Who acknowledged the device's open alert."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT acknowledged_by FROM device_alerts WHERE facility_id = %s "
            "AND device_id = %s AND resolved_at IS NULL",
            (facility_id, device_id),
        ).fetchone()
    return None if row is None else row[0]


def test_device_page_charts_its_day(base: str, chromium: Any, session: str) -> None:
    """Backlog, heartbeat gaps and taps per hour are drawn from the kiosk's history."""
    page = open_page(chromium, f"{base}/fleet/devices/D/meal-1", session=session)
    assert "200건" in page.inner_text("#panel")
    assert "미전송 적체" in page.inner_text("#panel")
    # 24 hours of heartbeats every 2 minutes, less the 25 minutes it was away.
    assert 680 <= int(page.get_attribute("#charts", "data-points")) <= 722
    assert page.locator("#charts canvas").count() == 3
    assert page.evaluate("Object.keys(window.fleetCharts).sort()") == ["backlog", "gaps", "taps"]
    # The morning's outage shows as one long gap, above the dashed offline threshold.
    gaps = page.evaluate("window.fleetCharts.gaps.data[1].filter(g => g !== null)")
    assert max(gaps) > 1400
    states = page.inner_text(".state-log")
    assert "응답 없음" in states
    assert "하트비트 재개" in states
    missing = page.goto(f"{base}/fleet/devices/Z/nope")
    assert missing is not None
    assert missing.status == 404
    assert "하트비트를 보낸 적이 없는 기기" in page.inner_text("main")


def test_fleet_api_answers_404_for_unknown_devices_and_alerts(base: str, seeded: str) -> None:
    """An operator action on an unknown device or alert answers a clear 404; GETs write nothing."""
    operator = session_headers(seeded, OPERATOR) if _account(seeded) else None
    if operator is None:
        operator_session(seeded)
        operator = session_headers(seeded, OPERATOR)
    before = _snapshot(seeded)
    with httpx.Client(base_url=base, timeout=30, headers=operator) as client:
        fleet = client.get("/api/v1/fleet").json()
        assert (fleet["online"], fleet["offline"], fleet["open_alerts"]) == (7, 1, 6)
        for path in (
            "/fleet",
            "/fleet/table",
            "/fleet/devices/D/meal-1",
            "/fleet/devices/D/meal-1/panel",
            "/api/v1/fleet/alerts",
            "/api/v1/fleet/devices/D/meal-1",
            "/api/v1/fleet/devices/D/meal-1/history?hours=48",
            "/metrics",
        ):
            assert client.get(path).status_code == 200, path
        assert _snapshot(seeded) == before
        unknown = client.post("/api/v1/fleet/alerts/987654/acknowledge")
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown alert 987654"})
        nobody = client.post("/api/v1/fleet/devices/Z/nope/acknowledge")
        assert (nobody.status_code, nobody.json()) == (404, {"detail": "unknown device Z/nope"})
        for path in ("/api/v1/fleet/devices/Z/nope", "/api/v1/fleet/devices/Z/nope/history"):
            assert client.get(path).json() == {"detail": "unknown device Z/nope"}
        # Without the session's CSRF token a signed-in browser's acknowledgement is refused.
        forged = client.post(
            "/api/v1/fleet/devices/D/meal-1/acknowledge", headers={CSRF_HEADER: "forged"}
        )
        assert forged.status_code == 403
        done = client.post("/api/v1/fleet/devices/D/meal-1/acknowledge")
        assert done.json() == {"acknowledged": 1}
        alert = client.get("/api/v1/fleet/alerts").json()
        mine = [a for a in alert if a["device_id"] == "meal-1" and a["facility_id"] == "D"]
        assert [a["acknowledged_by"] for a in mine] == [OPERATOR]
    # Nobody else may look: without a session the API answers 401.
    assert httpx.get(f"{base}/api/v1/fleet", timeout=30).status_code == 401


def test_screenshots_command_photographs_both_pages(base: str, seeded: str, tmp_path: Path) -> None:
    """`welfare fleet screenshots` makes the fleet page and a device page as PNG files."""
    written = screenshots(base, tmp_path, session=operator_session(seeded)[0])
    assert [p.name for p in written] == list(SHOTS)
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 40_000  # a rendered page with tables and charts


def test_docs_hold_the_dashboard_screenshots() -> None:
    """docs/screens/ has the committed screenshots (`welfare fleet screenshots`)."""
    missing = [name for name in SHOTS if not (ROOT / "docs" / "screens" / name).exists()]
    assert not missing, f"run `welfare fleet screenshots --out docs/screens`: {missing}"
