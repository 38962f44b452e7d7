"""Signing in with a real browser (headless Chromium): without and with the second factor.

With WELFARE_SCREENS_DIR set (`make screens`), the pages are also saved there for the docs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ingest_api.core.config import Settings
from ingest_api.main import create_app
from tests.browser import browser, serve
from tests.ingest_api.security.conftest import CREDENTIAL_KEY, DAY, build_world
from tests.security_helpers import DATA_KEY, PASSWORD

Site = tuple[str, dict[str, str]]


@pytest.fixture
def site(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The service on a local port over the small city; yields (base URL, TOTP secrets)."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", CREDENTIAL_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    secrets = build_world(database_url)
    settings = Settings(database_url=database_url, refresh_interval_s=0)
    with serve(create_app(settings, consume=False)) as base:
        yield base, secrets


def _arrive(page: Page, pattern: str) -> None:
    """Wait for the browser to reach a URL; on a timeout, say where it is and what it shows."""
    try:
        page.wait_for_url(pattern, timeout=30_000)
    except PlaywrightTimeoutError as exc:
        raise AssertionError(f"still at {page.url}: {page.inner_text('body')[:600]}") from exc


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot for the test's record and, when asked, for docs/screens."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    target = os.environ.get("WELFARE_SCREENS_DIR")
    if target:
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def test_sign_in_without_and_with_the_second_factor(site: Site, tmp_path: Path) -> None:
    """Staff: the password takes them to the page they asked for. The manager: the code too.
    A wrong password shows the same message for any name; signing out ends the session."""
    base, secrets = site
    with browser() as chromium:
        context = chromium.new_context(viewport={"width": 900, "height": 700}, locale="ko-KR")
        page = context.new_page()
        page.goto(f"{base}/?day={DAY}")
        _arrive(page, f"{base}/login?next=*")
        page.fill("#username", "staff.b")
        page.fill("#password", "wrong-password-1")
        page.click("#submit")
        assert page.inner_text("#message") == "아이디 또는 비밀번호가 맞지 않습니다."
        assert page.input_value("#username") == "staff.b"  # what was typed is kept
        _shot(page, tmp_path, "web_01_sign_in")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        _arrive(page, f"{base}/?day={DAY}")
        assert "출석 실적 현황" in page.inner_text("h1")
        page.click("text=로그아웃")
        _arrive(page, f"{base}/login")
        page.goto(f"{base}/?day={DAY}")
        _arrive(page, f"{base}/login?next=*")  # signed out means signed out

        page.goto(f"{base}/login?next=/audit")
        page.fill("#username", "manager.b")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        _arrive(page, f"{base}/login/second-factor*")
        _shot(page, tmp_path, "web_02_second_factor")
        page.fill("#code", "123456")
        page.click("#submit")
        assert "인증 코드가 맞지 않습니다" in page.inner_text("#message")
        page.fill("#code", pyotp.TOTP(secrets["manager.b"]).now())
        page.click("#submit")
        # The manager asked for the audit page: signed in, but it is the auditor's.
        _arrive(page, f"{base}/audit")
        assert "권한이 없습니다" in page.inner_text("h1")
        page.goto(f"{base}/?day={DAY}")
        assert "출석 실적 현황" in page.inner_text("h1")
        _shot(page, tmp_path, "web_03_overview")
        context.close()


def test_an_ended_session_sends_the_browser_back_to_its_page_after_signing_in(
    site: Site, database_url: str, tmp_path: Path
) -> None:
    """The auditor's session ends while idle; the browser is asked to sign in again (told
    why) and comes back to the filtered audit page it asked for."""
    base, _ = site
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1100, "height": 800})
        page.goto(f"{base}/login")
        page.fill("#username", "auditor")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        _arrive(page, f"{base}/")
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE user_sessions SET last_seen_at = now() - interval '2 hours'")
        page.goto(f"{base}/audit?action=sign_in")
        _arrive(page, f"{base}/login?next=*expired=1")
        assert "세션이 만료되었습니다" in page.inner_text("#expired")
        page.fill("#username", "auditor")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        _arrive(page, f"{base}/audit?action=sign_in")
        assert "로그인" in page.inner_text("#rows")
        page.click("#verify")
        _arrive(page, f"{base}/audit?verify=1")
        assert "정상" in page.inner_text("#chain")
        _shot(page, tmp_path, "web_04_audit")
