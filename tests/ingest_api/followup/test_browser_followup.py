"""The follow-up and figures pages in a real browser (Debian's Chromium), each under its role:
record an absence call, take the contact list of an incident with a reason, read the figures
(table and charts) and download the quarterly report, watch the meal hall count a new tap
without reloading, and be refused where the role may not go.

With WELFARE_SCREENS_DIR set, every page is saved there at desktop (1280×800) and 10-inch
tablet (800×1280) size for docs/staff.md.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import msoffcrypto
import psycopg
import pyotp
import pytest
import pyzipper
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page

from ingest_api.core.config import Settings
from ingest_api.ingest.writes import insert_events
from ingest_api.main import create_app
from tests.browser import browser, serve
from tests.ingest_api.followup.conftest import (
    CREDENTIAL_KEY,
    TODAY,
    build_city,
    event,
    lunch_today,
)
from tests.security_helpers import DATA_KEY, PASSWORD

SIZES = {"desktop": (1280, 800), "tablet": (800, 1280)}
FILE_PW = "browser-file-pw-3"


@pytest.fixture
def site(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, dict[str, str]]]:
    """The service on a local port over the small city; (base URL, TOTP secrets)."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", CREDENTIAL_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    secrets = build_city(database_url)
    lunch_today(database_url)  # two sittings today, served, tickets and refusals
    settings = Settings(
        database_url=database_url,
        refresh_interval_s=0.5,
        security={"maintenance_interval_s": 0},
        followup={"meal_hall_refresh_s": 1},
    )
    with serve(create_app(settings, consume=False)) as base:
        yield base, secrets


def sign_in(chromium: Browser, base: str, user: str, secrets: dict[str, str]) -> Page:
    """A page signed in as `user` (with the second factor when the role has one)."""
    page = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ko-KR").new_page()
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    if user in secrets:
        page.wait_for_url(f"{base}/login/second-factor*")
        page.fill("#code", pyotp.TOTP(secrets[user]).now())
        page.click("#submit")
    page.wait_for_url(f"{base}/")
    return page


def shots(page: Page, tmp_path: Path, name: str) -> None:
    """The page at desktop and tablet size (kept in docs/screens when asked)."""
    target = os.environ.get("WELFARE_SCREENS_DIR")
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # let the charts redraw at the new width
        for folder in (tmp_path, Path(target) if target else None):
            if folder is not None:
                page.screenshot(path=str(folder / f"{name}_{size}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_staff_record_an_absence_call_and_read_the_figures(
    site: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Staff: the absence list, a call recorded by touch and keyboard, the figures with charts,
    the quarterly report downloaded with a reason; the contact list is refused."""
    base, secrets = site
    with browser() as chromium:
        page = sign_in(chromium, base, "staff.b", secrets)
        page.click("nav.main-nav >> text=결석 안부전화")
        page.wait_for_url(f"{base}/followup/absence")
        first = page.locator("#absence-list tbody tr").first
        member = first.get_attribute("data-member")
        assert member
        shots(page, tmp_path, "web_10_absence")
        first.locator("text=받지 않음").click()  # a touch on the outcome
        first.locator("textarea").fill("오전에 다시 전화")
        first.locator("textarea").press("Tab")  # the keyboard reaches the button next
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/followup/absence?done={member}*")
        assert member in page.inner_text("#done")
        row = page.locator(f"#m-{member}")
        assert "받지 않음" in row.inner_text()
        assert "오전에 다시 전화" in row.inner_text()

        page.goto(f"{base}/followup/contacts")
        assert "권한이 없습니다" in page.inner_text("h1")

        page.goto(f"{base}/figures?level=program&program_id=B-MEAL")
        page.wait_for_selector("#chart-person_visits[data-drawn]")
        assert page.locator("#figures-table tbody tr").count() == 17  # 12 months, 4 quarters, year
        shots(page, tmp_path, "web_12_figures")
        page.fill("#r-reason", "분기 실적 제출")
        page.fill("#r-password", FILE_PW)
        page.fill("#r-password-again", FILE_PW)
        with page.expect_download() as download:
            page.click("#download-report")
        path = download.value.path()
        office = msoffcrypto.OfficeFile(io.BytesIO(Path(path).read_bytes()))
        office.load_key(password=FILE_PW)
        clear = io.BytesIO()
        office.decrypt(clear)
        assert load_workbook(clear).active.max_row > 3

        page.goto(f"{base}/figures/statistics")
        assert "이용자 실인원" in page.inner_text("#total")
        shots(page, tmp_path, "web_13_statistics")
        page.goto(f"{base}/figures/duplicates")
        assert "권한이 없습니다" in page.inner_text("h1")


def test_the_manager_takes_the_contact_list_of_an_incident(
    site: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The manager reveals a number for a call with a reason; for the contact list types a
    reason and a password, and the file opens with it and lists people."""
    base, secrets = site
    day = TODAY - timedelta(days=2)
    with browser() as chromium:
        page = sign_in(chromium, base, "manager.b", secrets)
        # the absence list: the number for the call, after a reason (htmx, in the row)
        page.goto(f"{base}/followup/absence")
        first = page.locator("#absence-list tbody tr").first
        first.locator("form.reveal button").click()
        number = first.locator("a.phone")
        number.wait_for()
        assert (number.get_attribute("href") or "").startswith("tel:010")
        page.click("nav.main-nav >> text=접촉자 명단")
        page.wait_for_url(f"{base}/followup/contacts")
        page.fill("#start", f"{day}T11:00")
        page.fill("#end", f"{day}T14:00")
        page.select_option("#format", "csv")
        page.fill("#reason", "식중독 의심, 보건소 요청")
        page.fill("#password", FILE_PW)
        page.fill("#password_again", FILE_PW)
        shots(page, tmp_path, "web_11_contacts")
        page.fill("#reason", "")
        page.evaluate("document.getElementById('reason').removeAttribute('required')")
        page.click("#download")  # no reason: the server says what to fix, keeps the rest
        assert "사유" in page.inner_text("#reason-error")
        assert page.input_value("#start") == f"{day}T11:00"
        page.fill("#reason", "식중독 의심, 보건소 요청")
        page.fill("#password", FILE_PW)
        page.fill("#password_again", FILE_PW)
        with page.expect_download() as download:
            page.click("#download")
        with pyzipper.AESZipFile(download.value.path()) as archive:
            archive.setpassword(FILE_PW.encode())
            text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
        assert text.count("\n") > 5
        assert "회원" in text


def test_the_meal_hall_counts_a_new_tap_without_reloading(
    site: tuple[str, dict[str, str]], database_url: str, tmp_path: Path
) -> None:
    """The live part polls: a tap at the kiosk shows up in the served count by itself; an
    ended session is said on the page."""
    base, secrets = site
    with browser() as chromium:
        page = sign_in(chromium, base, "staff.b", secrets)
        page.click("nav.main-nav >> text=경로식당")
        page.wait_for_url(f"{base}/mealhall")
        served = page.locator('section.sitting[data-program="B-MEAL"]').first
        before = int(served.get_attribute("data-served") or "-1")
        with psycopg.connect(database_url) as conn, conn.cursor() as cur:
            insert_events(cur, rows=[event(TODAY, -15, "B", "B-MEAL", "B-M8", ticket=7)])
        page.wait_for_selector(
            f'section.sitting[data-program="B-MEAL"][data-served="{before + 1}"]'
        )
        page.click("#show-refusals")
        page.wait_for_selector("#refusal-list")
        shots(page, tmp_path, "web_15_mealhall")
        # the session ends while the tablet polls: the page says so instead of going stale
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE user_sessions SET last_seen_at = now() - interval '2 hours'")
        page.wait_for_selector("#poll-status:not([hidden])")
        assert "로그인이 끝났습니다" in page.inner_text("#poll-status")


def test_the_city_reads_the_duplicates_and_the_citys_figures(
    site: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The city's administrator: the duplicate-service view and the whole city's months."""
    base, secrets = site
    with browser() as chromium:
        page = sign_in(chromium, base, "city.admin", secrets)
        page.click("nav.main-nav >> text=중복 서비스")
        page.wait_for_url(f"{base}/figures/duplicates")
        assert page.locator("#duplicates-table tbody tr[data-person]").count() == 1
        shots(page, tmp_path, "web_14_duplicates")
        page.goto(f"{base}/figures?level=city")
        page.wait_for_selector("#chart-cases[data-drawn]")
        assert "시 전체" in page.inner_text("h1")
        page.goto(f"{base}/followup/absence")
        assert "권한이 없습니다" in page.inner_text("h1")
