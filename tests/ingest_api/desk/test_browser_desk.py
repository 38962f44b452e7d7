"""The desk and field pages in a real browser (Debian's Chromium under Playwright), as B's staff.

Each main path: sign in, search a member, register one with consent (refused first without
it, nothing typed lost), enrol, issue a card by a simulated desk tap (the UID typed into the
focused field with Enter, as a keyboard-wedge reader does) and find the member by tapping it,
register a visitor and a resident met outside, record a service. The visitor and contact
registrations are timed: steps and seconds are written to `field_timing.json` (and printed);
docs/staff.md records the figure. With WELFARE_SCREENS_DIR set, the pages are saved there at
desktop and tablet size (docs/screens/desk_*.png).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import psycopg
import pytest
from playwright.sync_api import Page, ViewportSize

from broker.const import DEFAULT_TIMEZONE
from ingest_api.core.config import Settings
from ingest_api.main import create_app
from tests.browser import browser, serve
from tests.ingest_api.desk.conftest import more_programs
from tests.ingest_api.security.conftest import CREDENTIAL_KEY, build_world
from tests.ingest_api.security.test_browser_signin import _arrive, _shot
from tests.security_helpers import DATA_KEY, PASSWORD

DESKTOP = ViewportSize(width=1366, height=900)
TABLET = ViewportSize(width=800, height=1280)  # a 10-inch tablet held upright
CARD_UID = "04:5C:2E:91:7A"
# Keystroke-level model of a practised user on a tablet (Card, Moran & Newell; touch typing
# of Korean on a soft keyboard is slower than on a desk keyboard): seconds per action.
TAP_S = 1.1  # point and tap a target
THINK_S = 1.35  # decide what goes into the next field
CHAR_S = 0.6  # one character on a tablet's soft keyboard (Korean syllables included)


@dataclass
class Timing:
    """Steps a user takes on one path, the browser's seconds, and a practised user's estimate."""

    name: str
    steps: list[str] = field(default_factory=list)
    taps: int = 0
    fields: int = 0
    chars: int = 0
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def tap(self, page: Page, selector: str, what: str) -> None:
        """One tap (a click for the browser)."""
        page.click(selector)
        self.taps += 1
        self.steps.append(f"tap {what}")

    def type(self, page: Page, selector: str, text: str, what: str) -> None:
        """Tap a field and type into it."""
        page.click(selector)
        page.keyboard.type(text)
        self.taps += 1
        self.fields += 1
        self.chars += len(text)
        self.steps.append(f"type {what} ({len(text)} characters)")

    def done(self) -> None:
        """The path ended (the result is on the screen)."""
        self.seconds = time.perf_counter() - self.started

    def estimate(self) -> float:
        """A practised user's seconds by the keystroke-level model."""
        return self.taps * TAP_S + self.fields * THINK_S + self.chars * CHAR_S + self.seconds

    def report(self) -> dict[str, object]:
        """What the run reports."""
        return {
            "path": self.name,
            "steps": len(self.steps),
            "taps": self.taps,
            "fields_typed": self.fields,
            "characters": self.chars,
            "browser_seconds": round(self.seconds, 2),
            "practised_user_seconds": round(self.estimate(), 1),
            "detail": self.steps,
        }


@pytest.fixture
def site(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The service on a local port over the small city with B's extra programs; yields its
    base URL and its database."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", CREDENTIAL_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    build_world(database_url)
    more_programs(database_url)
    settings = Settings(database_url=database_url, refresh_interval_s=0)
    with serve(create_app(settings, consume=False)) as base:
        yield base, database_url


def _sign_in(page: Page, base: str, target: str) -> None:
    """Sign in as B's staff and land on `target`."""
    page.goto(f"{base}{target}")
    _arrive(page, f"{base}/login?next=*")
    page.fill("#username", "staff.b")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    _arrive(page, f"{base}{target}")


def test_the_desk_by_browser(site: tuple[str, str], tmp_path: Path) -> None:
    """Search, register with consent, enrol, issue a card by a desk tap, find by the tap."""
    base, url = site
    with browser() as chromium:
        page = chromium.new_context(viewport=DESKTOP, locale="ko-KR").new_page()
        _sign_in(page, base, "/desk")
        assert page.evaluate("document.activeElement.id") == "uid"  # ready for a tap
        page.fill("#q", "이영희")
        page.press("#q", "Enter")
        _arrive(page, f"{base}/desk?q=*")
        assert "B-M1" in page.inner_text("#results")
        _shot(page, tmp_path, "desk_1_search")
        page.click("#results >> text=이영희")
        _arrive(page, f"{base}/desk/members/B-M1")
        _shot(page, tmp_path, "desk_2_member")
        # Register: first without the city's consent — refused, everything typed stays.
        page.click("text=회원 등록")
        _arrive(page, f"{base}/desk/members/new")
        page.fill("#display_name", "정복순")
        page.check("#gender-F")
        page.fill("#birth_date", "1944-03-15")
        page.fill("#phone", "010-5555-7788")
        page.fill("#neighbourhood", "우만1동")
        page.fill("#main_needs", "식사, 안부")
        page.select_option("#program_id", "B-MEAL")
        page.check("#consent-privacy")
        page.click("#save")
        assert "시·연구원 제공 동의가 없으면" in page.inner_text("#err-consent")
        assert page.input_value("#display_name") == "정복순"
        assert page.input_value("#phone") == "010-5555-7788"
        assert page.is_checked("#consent-privacy")
        _shot(page, tmp_path, "desk_3_register_refused")
        page.check("#consent-transfer")
        page.click("#save")
        _arrive(page, f"{base}/desk/members/B-*?saved=1")
        ref = page.url.split("/desk/members/")[1].split("?")[0]
        assert "정복순" in page.inner_text("#member-name")
        # Enrol in a second program.
        page.select_option("#enrol-form #program_id", "B-YOGA")
        with page.expect_navigation():  # the same address again: wait for the new page
            page.click("#enrol")
        _arrive(page, f"{base}/desk/members/{ref}?saved=1")
        assert "B-YOGA" in page.inner_text("#programs")
        # Issue a card: the desk reader types the UID into the focused field, then Enter.
        page.click("#card-form #uid")
        page.keyboard.type(CARD_UID)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        _arrive(page, f"{base}/desk/members/{ref}?saved=1")
        assert "발급된 카드가 없습니다" not in page.inner_text("#cards")
        _shot(page, tmp_path, "desk_4_card_issued")
        # The tap at the desk now finds the member.
        page.goto(f"{base}/desk")
        # The card field takes the focus by itself (autofocus): wait for that before the reader
        # types, as a busy browser may not have given it yet (keys typed first would be lost).
        page.wait_for_function("document.activeElement && document.activeElement.id === 'uid'")
        page.keyboard.type(CARD_UID)
        page.keyboard.press("Enter")
        _arrive(page, f"{base}/desk/members/{ref}")
        tablet = chromium.new_context(viewport=TABLET, locale="ko-KR").new_page()
        _sign_in(tablet, base, f"/desk/members/{ref}")
        _shot(tablet, tmp_path, "desk_5_member_tablet")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM member_credentials WHERE member_ref = %s AND revoked_at IS NULL",
            (ref,),
        ).fetchone()
    assert row == (1,)


def test_the_field_by_browser(site: tuple[str, str], tmp_path: Path) -> None:
    """A visitor and a resident registered on a tablet, each timed; a service recorded."""
    base, url = site
    timings = []
    with browser() as chromium:
        page = chromium.new_context(viewport=TABLET, locale="ko-KR").new_page()
        _sign_in(page, base, "/desk")
        # A one-off visitor: from the menu to the code on the screen.
        visitor = Timing("visitor")
        visitor.tap(page, "nav >> text=방문자", "방문자 (menu)")
        _arrive(page, f"{base}/field/visitors")
        visitor.tap(page, "label:has(#gender-M)", "성별 남")
        visitor.tap(page, "label:has(#age_band-75-79)", "연령대 75–79")
        visitor.type(page, "#neighbourhood", "우만1동", "거주 동")
        visitor.type(page, "#purpose", "상담", "방문 목적")
        visitor.tap(page, "#visitor-submit", "코드 발급")
        _arrive(page, f"{base}/field/visitors/V-B-*")
        code = page.inner_text("#visitor-code")
        visitor.done()
        timings.append(visitor)
        assert code.startswith("V-B-")
        # The QR code as the tablet shows it reads back as the code (OpenCV's detector).
        shot = tmp_path / "qr.png"
        page.locator(".qr svg").screenshot(path=str(shot))
        image = cv2.imread(str(shot))
        assert image is not None
        found, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
        assert found == code
        _shot(page, tmp_path, "field_1_visitor_code_tablet")
        # A returning visitor: the code brings their card back.
        page.goto(f"{base}/field/visitors")
        _shot(page, tmp_path, "field_2_visitor_form_tablet")
        page.fill("#code", code)
        page.press("#code", "Enter")
        _arrive(page, f"{base}/field/visitors/{code}")
        # A resident met in the neighbourhood (the code and time are filled in already).
        contact = Timing("contact")
        contact.tap(page, "nav >> text=주민 만남", "주민 만남 (menu)")
        _arrive(page, f"{base}/field/contacts")
        contact.tap(page, "label:has(#gender-F)", "성별 여")
        page.select_option("#age_band", "80-84")
        contact.taps += 2
        contact.steps.append("choose 연령대 80–84 (2 taps)")
        contact.type(page, "#neighbourhood", "우만2동", "거주 동")
        contact.type(page, "#place", "경로당", "만난 장소")
        contact.type(page, "#needs", "반찬 지원 필요", "욕구")
        first_at = page.input_value("#met_at")  # filled in with the time now
        contact.tap(page, "#contact-submit", "기록")
        _arrive(page, f"{base}/field/contacts?saved=*")
        contact.done()
        timings.append(contact)
        assert "만남을 기록했습니다" in page.inner_text("#saved")
        _shot(page, tmp_path, "field_3_contact_tablet")
        # A second meeting with the same resident: a second record.
        page.click("#saved >> text=같은 주민을 다시 만남")
        _arrive(page, f"{base}/field/contacts?code=*")
        assert page.input_value("#age_band") == "80-84"  # the resident's last meeting
        page.fill("#met_at", first_at)
        page.fill("#place", "놀이터")
        with page.expect_navigation():
            page.click("#contact-submit")  # the same minute as the first: said, not dropped
        assert "같은 시각의 만남이 이미 기록되어" in page.inner_text("#err-met_at")
        earlier = (datetime.now(ZoneInfo(DEFAULT_TIMEZONE)) - timedelta(minutes=20)).strftime(
            "%Y-%m-%dT%H:%M"
        )
        page.fill("#met_at", earlier)
        assert page.input_value("#place") == "놀이터"  # kept through the refusal
        page.click("#contact-submit")
        _arrive(page, f"{base}/field/contacts?saved=*")
        # A phone check recorded by hand.
        page.click("nav >> text=서비스 기록")
        _arrive(page, f"{base}/services")
        page.click("label:has(#kind-phone_check)")
        page.select_option("#program_id", "B-CARE")
        page.click("label:has(#target-member)")
        page.fill("#member_ref", "B-M1")
        page.fill("#note", "안부 확인, 건강 양호")
        page.click("#service-submit")
        _arrive(page, f"{base}/services?saved=1")
        assert "안부전화" in page.inner_text("#recent")
        _shot(page, tmp_path, "field_4_services_tablet")
        desktop = chromium.new_context(viewport=DESKTOP, locale="ko-KR").new_page()
        _sign_in(desktop, base, "/services")
        _shot(desktop, tmp_path, "field_5_services_desktop")
        desktop.goto(f"{base}/field/contacts")
        _shot(desktop, tmp_path, "field_6_contacts_desktop")
    with psycopg.connect(url) as conn:
        meetings = conn.execute("SELECT count(*) FROM community_contacts").fetchone()
    assert meetings == (2,)
    report = [t.report() for t in timings]
    (tmp_path / "field_timing.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(json.dumps(report, ensure_ascii=False))
    for t in timings:
        assert len(t.steps) <= 8, t.steps  # a short path; speed itself is not asserted


PAGES = (
    ("search", "/desk?q=이"),
    ("member", "/desk/members/B-M1"),
    ("register", "/desk/members/new"),
    ("visitor", "/field/visitors"),
    ("contact", "/field/contacts"),
    ("services", "/services"),
)


def test_every_page_fits_a_tablet_and_a_desktop(site: tuple[str, str], tmp_path: Path) -> None:
    """Each desk and field page at desktop and tablet size: shown, nothing wider than the
    screen (no sideways scrolling on a tablet), every control at least 40 px tall to touch."""
    base, _ = site
    with browser() as chromium:
        for size, viewport in (("desktop", DESKTOP), ("tablet", TABLET)):
            page = chromium.new_context(viewport=viewport, locale="ko-KR").new_page()
            _sign_in(page, base, "/desk")
            for name, path in PAGES:
                page.goto(f"{base}{path}")
                assert page.locator("main.desk h1").count() == 1, path
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{path} is {width}px wide at {size}"
                small = page.evaluate(
                    """() => [...document.querySelectorAll(
                        'main.desk button, main.desk input:not([type=hidden]):not([type=radio])'
                        + ':not([type=checkbox]), main.desk select, main.desk label.choice')]
                        .filter(e => e.offsetParent !== null
                                 && e.getBoundingClientRect().height < 40)
                        .map(e => e.id || e.name || e.textContent.trim())"""
                )
                assert small == [], f"{path} at {size}: too small to touch: {small}"
                _shot(page, tmp_path, f"desk_page_{name}_{size}")
