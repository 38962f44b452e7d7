"""Flows driven in one real kiosk window (Kivy allows one window per process).

Run by test_kiosk_window.py as `python ui_flows.py REPORT.json` with DISPLAY set: each check
drives the window with simulated card taps and finger touches, asserts what is on screen and
in the agent's store, and the report says which checks passed and why others failed.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from kiosk_app.boot import prepare_kivy
from kiosk_app.settings import KioskSettings

PIN = "7391"
Check = Callable[[Any], Awaitable[None]]
CHECKS: dict[str, Check] = {}
DAY = date(2026, 11, 23)


def check(fn: Check) -> Check:
    """Register a check; they run in definition order, sharing one window and store."""
    CHECKS[fn.__name__] = fn
    return fn


def last_sound(ui: Any) -> str:
    """Name of the last sound the app requested."""
    return str(ui.app.sounds.requested[-1][0])


async def events(ui: Any) -> list[Any]:
    """Every event in the agent's store."""
    return list(await ui.agent.agent.store.all_events())


async def open_staff_menu(ui: Any) -> None:
    """From idle: '직원', the PIN, the staff menu."""
    await ui.press("직원")
    await ui.wait_screen("pin")
    await ui.enter_pin(PIN)
    await ui.wait_screen("staff")


@check
async def idle_screen(ui: Any) -> None:
    """Idle: the instruction, the facility, the service on now, the time; no badge."""
    from kiosk_app import demo

    shown = ui.texts()
    assert ui.screen == "idle"
    assert "카드를 대 주세요" in shown, shown
    assert demo.FACILITY_NAME in shown, shown
    assert "12:05" in shown, shown
    assert any(t.startswith("지금:") and "경로식당 점심" in t for t in shown), shown
    assert ui.app.badge_text == ""


@check
async def meal_success(ui: Any) -> None:
    """A member's card: masked name, service, ticket 1, success sound, event recorded."""
    from kiosk_app import demo

    result = await ui.tap(demo.CARD_MEAL)
    shown = ui.texts()
    assert ui.screen == "success", ui.screen
    assert {"맛있게 드세요", "김*수 님", "경로식당 점심", "1"} <= set(shown), shown
    assert last_sound(ui) == "success"
    screen = ui.app.screen("success")
    assert screen.ids.name.font_size >= 100
    assert screen.ids.ticket.font_size >= 100
    stored = [e for e in await events(ui) if str(e.event_id) == str(result.event_id)]
    assert len(stored) == 1
    assert stored[0].outcome.value == "accepted"
    assert stored[0].ticket_no == 1


@check
async def success_returns_to_idle_by_itself(ui: Any) -> None:
    """The success screen goes back to idle after success_s (3 s in this run)."""
    from kiosk_app import demo

    await ui.tap(demo.CARD_MEAL_2)
    assert ui.screen == "success"
    await ui.wait_screen("idle", within=ui.app.settings.success_s + 3)


@check
async def already_served_gives_no_second_ticket(ui: Any) -> None:
    """Second tap the same day: different screen and sound, no new ticket."""
    from kiosk_app import demo

    before = await ui.agent.agent.store.served_count(DAY)
    await ui.tap(demo.CARD_MEAL)
    shown = ui.texts()
    assert ui.screen == "already"
    assert {"오늘 이미 식사하셨습니다", "김*수 님"} <= set(shown), shown
    assert not any(t.isdigit() for t in shown), shown  # no ticket number on screen
    assert last_sound(ui) == "already"
    assert await ui.agent.agent.store.served_count(DAY) == before
    assert (await events(ui))[-1].outcome.value == "already_served"


@check
async def staff_override_issues_a_ticket(ui: Any) -> None:
    """'직원 확인' -> PIN -> a reason -> the member is let in with a new ticket, method staff,
    the reason recorded with the event."""
    await ui.press("직원 확인")
    await ui.wait_screen("pin")
    await ui.enter_pin(PIN)
    await ui.wait_screen("reason")
    await ui.press("번호표 분실")
    await ui.wait_screen("success")
    assert "3" in ui.texts(), ui.texts()  # tickets 1 and 2 went to the first two members
    last = (await events(ui))[-1]
    assert last.method.value == "staff"
    assert last.outcome.value == "accepted"
    assert last.override_reason == "번호표 분실"


@check
async def unknown_card_goes_to_staff(ui: Any) -> None:
    """Unknown card: see staff, refusal sound, event recorded, no override."""
    from kiosk_app import demo

    await ui.tap(demo.CARD_UNKNOWN)
    shown = ui.texts()
    assert ui.screen == "refused"
    assert {"등록되지 않은 카드입니다", "직원에게 문의해 주세요"} <= set(shown), shown
    assert "직원 확인" not in shown
    assert last_sound(ui) == "refused"
    assert (await events(ui))[-1].outcome.value == "unknown_credential"


@check
async def inactive_member_goes_to_staff(ui: Any) -> None:
    """Moved-out member: clear message with the name, event recorded for staff."""
    from kiosk_app import demo

    await ui.tap(demo.CARD_INACTIVE)
    shown = ui.texts()
    assert ui.screen == "refused"
    assert {"이용이 중지된 회원입니다", "박*자 님"} <= set(shown), shown
    assert last_sound(ui) == "refused"
    last = (await events(ui))[-1]
    assert last.outcome.value == "inactive_member"
    assert last.member_ref == "M003"


@check
async def several_classes_one_button_each(ui: Any) -> None:
    """Two classes on now: two big buttons; touching one checks into that class."""
    from kiosk_app import demo

    await ui.tap(demo.CARD_TWO_CLASSES)
    assert ui.screen == "choose"
    assert last_sound(ui) == "choose"
    buttons = list(ui.app.screen("choose").ids.choices.children)
    assert sorted(b.text for b in buttons) == ["노래교실 · 3층 강당", "스마트폰 교실 · 2층 교육실"]
    for button in buttons:
        assert min(button.size) >= ui.app.target_px, button.size
    await ui.press("노래교실 · 3층 강당")
    await ui.wait_screen("success")
    shown = ui.texts()
    assert {"출석되었습니다", "최*자 님", "노래교실"} <= set(shown), shown
    last = (await events(ui))[-1]
    assert (last.member_ref, last.program_id, last.outcome.value) == (
        "M004",
        demo.SONG,
        "accepted",
    )


@check
async def class_already_checked_in(ui: Any) -> None:
    """A class member tapping twice sees '이미 출석하셨습니다'."""
    from kiosk_app import demo

    await ui.tap(demo.CARD_ONE_CLASS)
    assert ui.screen == "success"
    assert "출석되었습니다" in ui.texts()
    await ui.tap(demo.CARD_ONE_CLASS)
    assert ui.screen == "already", ui.screen
    assert "이미 출석하셨습니다" in ui.texts(), ui.texts()


@check
async def wrong_pin_is_refused(ui: Any) -> None:
    """A wrong PIN keeps the staff menu closed."""
    await ui.press("직원")
    await ui.wait_screen("pin")
    await ui.enter_pin("0000")
    wrong = "PIN이 맞지 않습니다. 다시 입력해 주세요"
    await ui.wait_for(lambda: wrong in ui.texts(), "the wrong-PIN message")
    assert ui.screen == "pin"
    await ui.press("취소")
    await ui.wait_screen("idle")


@check
async def staff_registers_a_visitor(ui: Any) -> None:
    """Staff menu -> visitor: four choices -> the personal ID code, recorded by the agent."""
    await open_staff_menu(ui)
    await ui.press("방문자 등록\n(개인식별코드 발급)")
    await ui.wait_screen("visitor")
    await ui.press("남")
    await ui.press("75-79")
    await ui.press("다음")
    await ui.wait_screen("visitor_place")
    await ui.press("영화동")
    await ui.press("프로그램 문의")
    await ui.press("등록")
    await ui.wait_screen("visitor_code")
    code = ui.app.screen("visitor_code").code
    assert re.fullmatch(r"V-B-kiosk-1-20261123-\d{4}", code), code
    assert code in ui.texts()
    last = (await events(ui))[-1]
    assert last.visitor is not None
    assert last.visitor.visitor_code == code
    assert (last.visitor.gender.value, last.visitor.age_band, last.visitor.neighbourhood) == (
        "M",
        "75-79",
        "영화동",
    )
    await ui.press("직원 메뉴로")
    await ui.wait_screen("staff")


@check
async def staff_sees_todays_counts(ui: Any) -> None:
    """Counts on screen equal the agent's served log."""
    from kiosk_app import demo

    await open_staff_menu(ui)
    await ui.press("오늘 현황")
    await ui.wait_screen("counts")
    served = await ui.agent.agent.store.served_count(DAY)
    shown = ui.texts()
    assert {"경로식당 점심", f"{served[demo.MEAL]}명"} <= set(shown), shown
    assert f"합계 {sum(served.values())}명" in shown, shown
    await ui.press("직원 메뉴로")
    await ui.wait_screen("staff")


@check
async def staff_can_silence_the_sound(ui: Any) -> None:
    """'소리 끄기': the next outcome is still requested, but not audible."""
    from kiosk_app import demo

    await open_staff_menu(ui)
    await ui.press("소리 끄기")
    await ui.press("나가기")
    await ui.wait_screen("idle")
    await ui.tap(demo.CARD_MEAL_2)
    assert ui.app.sounds.requested[-1] == ("already", False)
    ui.app.go_idle()
    await ui.wait_screen("idle")
    await open_staff_menu(ui)
    await ui.press("소리 켜기 (지금 꺼짐)")
    await ui.press("나가기")
    await ui.wait_screen("idle")
    assert ui.app.sounds.enabled


@check
async def offline_badge_never_blocks(ui: Any) -> None:
    """Center unreachable: a small staff badge; members are still answered locally."""
    from kiosk_app import demo, texts, theme

    ui.agent.agent.online = False
    await ui.wait_for(lambda: ui.app.badge_text == texts.OFFLINE_BADGE, "offline badge")
    assert ui.app.root.ids.badge.font_size == theme.BADGE_PX
    await ui.tap(demo.CARD_ONE_CLASS)
    assert ui.screen == "already"
    ui.agent.agent.online = True
    await ui.wait_for(lambda: ui.app.badge_text == "", "badge cleared")


@check
async def ui_reconnects_when_the_agent_link_restarts(ui: Any) -> None:
    """Agent link restarted: the view shows it to staff, reconnects and carries on."""
    from kiosk_app import demo, texts

    server = ui.agent.server
    await server.__aexit__(None, None, None)
    await ui.wait_for(lambda: ui.app.badge_text == texts.LINK_DOWN_BADGE, "link-down badge")
    await server.__aenter__()
    await ui.wait_for(lambda: ui.app.link_up and ui.reader.connected, "reconnect")
    await ui.wait_for(lambda: ui.app.badge_text == "", "badge cleared")
    await asyncio.sleep(0.2)  # the view re-subscribes with a request of its own
    await ui.tap(demo.CARD_UNKNOWN)
    assert ui.screen == "refused"


@check
async def demo_keyboard_reader(ui: Any) -> None:
    """`kiosk run --demo`: typing a shortcut and Enter taps that demo card through the link."""
    from kivy.core.window import Window

    from kiosk_app import demo

    before = ui.app.results_shown
    Window.dispatch("on_textinput", "2")
    Window.dispatch("on_key_down", 13, 36, None, [])
    await ui.wait_for(lambda: ui.app.results_rendered > before, "the typed tap")
    assert ui.app.result is not None
    assert ui.app.result.member_ref == "M002", ui.app.result
    assert demo.KEYBOARD_CARDS["2"] == demo.CARD_MEAL_2


@check
async def every_screen_meets_size_rules(ui: Any) -> None:
    """On every screen: text >= 48 px, buttons >= 2 cm both ways, name/ticket >= 100 px."""
    from kivy.uix.button import Button
    from kivy.uix.label import Label

    problems = []
    target = ui.app.target_px
    for name in ui.app.manager.screen_names:
        ui.app.manager.current = name
        await ui.frames(2)
        for widget in ui.app.manager.current_screen.walk():
            if not isinstance(widget, Label) or not widget.text or widget.opacity == 0:
                continue
            if widget.font_size < 48:
                problems.append(f"{name}: {widget.text!r} is {widget.font_size} px")
            if isinstance(widget, Button) and min(widget.size) < target:
                problems.append(f"{name}: button {widget.text!r} is {widget.size}")
        for key in ("name", "ticket"):
            label = ui.app.screen(name).ids.get(key)
            if label is not None and label.font_size < 100:
                problems.append(f"{name}: {key} is {label.font_size} px")
    ui.app.go_idle()
    assert not problems, problems


async def run_checks(ui: Any) -> dict[str, dict[str, Any]]:
    """Run every check from the idle screen; record pass/fail with the reason."""
    report: dict[str, dict[str, Any]] = {}
    for name, fn in CHECKS.items():
        if ui.screen != "idle" and not name.startswith("staff_override"):
            ui.app.go_idle()
            await ui.wait_screen("idle")
        try:
            await asyncio.wait_for(fn(ui), 60)
        except BaseException as exc:  # keep going: report every check
            report[name] = {"ok": False, "error": "".join(traceback.format_exception(exc))}
        else:
            report[name] = {"ok": True, "error": ""}
    report["_sounds"] = {"ok": True, "error": "", "requested": ui.app.sounds.requested}
    return report


def main(out: Path) -> int:
    """Open the window, run the checks, write the report."""
    prepare_kivy(KioskSettings())
    from kiosk_app import harness

    with tempfile.TemporaryDirectory(prefix="kiosk-ui-") as tmp:
        from kiosk_app import demo

        report = asyncio.run(
            harness.run_ui(
                Path(tmp),
                run_checks,
                pin=PIN,
                keyboard_cards=demo.KEYBOARD_CARDS,
                success_s=3.0,
            )
        )
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
