"""Pure parts of the kiosk: palette contrast, sizes, wording, sounds, PIN, font, CLI."""

from __future__ import annotations

import argparse
import wave
from datetime import time
from pathlib import Path

import pytest

from broker.vocabulary import Method, Outcome, ProgramKind
from edge_agent.models import ProgramChoice, TapResult
from kiosk_app import sounds, texts, theme
from kiosk_app.cli import register
from kiosk_app.fonts import FontMissingError, register_korean_font
from kiosk_app.pin import hash_pin, verify_pin
from kiosk_app.settings import KioskSettings


@pytest.mark.parametrize(("fg", "bg", "where"), theme.TEXT_PAIRS)
def test_every_text_colour_has_at_least_7_to_1_contrast(fg: str, bg: str, where: str) -> None:
    """WCAG 1.4.6 (AAA) contrast for every text on its background."""
    assert theme.contrast_ratio(fg, bg) >= 7.0, where


def test_contrast_formula_matches_wcag_reference_values() -> None:
    """Black on white is 21:1; white on white 1:1; #767676 on white about 4.54:1."""
    assert theme.contrast_ratio(theme.BLACK, theme.WHITE) == pytest.approx(21.0)
    assert theme.contrast_ratio(theme.WHITE, theme.WHITE) == pytest.approx(1.0)
    assert theme.contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)


def test_text_sizes_meet_the_requirement() -> None:
    """Messages >= 48 px, name and ticket >= 100 px."""
    assert min(theme.MESSAGE_PX, theme.STAFF_TEXT_PX, theme.MIN_MEMBER_TEXT_PX) >= 48
    assert min(theme.NAME_PX, theme.TICKET_PX, theme.MIN_NAME_PX) >= 100


def test_touch_target_is_two_centimetres_at_the_configured_dpi() -> None:
    """2 cm is 119 px at 150 dpi, 76 px at 96 dpi; settings follow the DPI."""
    assert theme.cm_to_px(2.0, 150) == 119
    assert theme.cm_to_px(2.0, 96) == 76
    assert KioskSettings(dpi=200).target_px == 158
    assert theme.TARGET_PX / theme.DEFAULT_DPI * 2.54 >= 2.0


def test_timeouts_leave_slow_readers_time() -> None:
    """Decision screens wait at least 20 s (WCAG 2.2.1); nothing is shorter than 3 s."""
    settings = KioskSettings()
    assert settings.choose_s >= 20
    assert settings.staff_idle_s >= 20
    assert settings.success_s >= 3
    assert settings.already_s >= 5
    assert settings.refused_s >= 5


def result(outcome: Outcome | None, **fields: object) -> TapResult:
    """A tap result for wording tests (outcome None: the member must choose a class)."""
    return TapResult(outcome=outcome, method=Method.CARD, **fields)  # type: ignore[arg-type]


def test_every_outcome_has_korean_wording_and_a_sound() -> None:
    """Each outcome, and a pending choice, maps to a screen, a sound group and Korean text."""
    member = {"member_ref": "M001", "display_name": "김*수"}
    meal = {"program_id": "MEAL", "program_name": "경로식당 점심", "program_kind": ProgramKind.MEAL}
    cases = {
        Outcome.ACCEPTED: result(Outcome.ACCEPTED, ticket_no=12, **member, **meal),
        Outcome.ALREADY_SERVED: result(Outcome.ALREADY_SERVED, ticket_no=3, **member, **meal),
        Outcome.UNKNOWN_CREDENTIAL: result(Outcome.UNKNOWN_CREDENTIAL),
        Outcome.INACTIVE_MEMBER: result(Outcome.INACTIVE_MEMBER, **member, **meal),
        Outcome.NOT_ENROLLED: result(Outcome.NOT_ENROLLED, **member, **meal),
        Outcome.NO_SERVICE: result(Outcome.NO_SERVICE, **member),
        Outcome.SITTING_FULL: result(
            Outcome.SITTING_FULL, **member, **meal, next_sitting=time(12, 15)
        ),
        None: result(None, choices=(ProgramChoice("A", "노래교실", None),), **member),
    }
    assert set(cases) == {*Outcome, None}
    shown = {v: texts.present(r) for v, r in cases.items()}
    for presentation in shown.values():
        assert any("\uac00" <= ch <= "\ud7a3" for ch in presentation.headline)
        assert presentation.sound in sounds.TUNES
    assert shown[Outcome.ACCEPTED].ticket == "12"
    assert shown[Outcome.ACCEPTED].name == "김*수 님"
    # Already served: no ticket on screen (no second ticket), staff may override.
    assert shown[Outcome.ALREADY_SERVED].ticket == ""
    assert shown[Outcome.ALREADY_SERVED].can_override
    assert not shown[Outcome.UNKNOWN_CREDENTIAL].can_override
    assert shown[Outcome.INACTIVE_MEMBER].can_override
    assert "직원" in shown[Outcome.UNKNOWN_CREDENTIAL].detail
    assert len({shown[v].sound for v in (Outcome.ACCEPTED, Outcome.ALREADY_SERVED)}) == 2
    assert shown[Outcome.UNKNOWN_CREDENTIAL].sound not in {"success", "already"}
    assert "12:15" in shown[Outcome.SITTING_FULL].detail  # the next sitting is offered


def test_class_check_in_has_no_ticket() -> None:
    """A class shows '출석되었습니다' and no number."""
    shown = texts.present(
        result(
            Outcome.ACCEPTED,
            member_ref="M5",
            display_name="정*수",
            program_id="SONG",
            program_name="노래교실",
            program_kind=ProgramKind.CLASS,
        )
    )
    assert (shown.headline, shown.ticket, shown.detail) == ("출석되었습니다", "", "노래교실")


def test_generated_sounds_are_distinct_wav_files(tmp_path: Path) -> None:
    """One playable WAV per outcome, all different in length or content."""
    paths = sounds.generate(tmp_path)
    contents = set()
    for name in ("success", "already", "refused", "choose"):
        with wave.open(str(paths[name])) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
            assert wav.getnframes() > 22050 * 0.2
            contents.add(wav.readframes(wav.getnframes()))
    assert len(contents) == 4


def test_soundboard_degrades_without_audio(tmp_path: Path) -> None:
    """A failing audio backend leaves the kiosk silent but every request is logged."""

    def broken(_path: str) -> object:
        """An audio loader that always fails, like SDL with no sound card."""
        raise OSError("no audio device")

    board = sounds.SoundBoard(directory=tmp_path, loader=broken)
    board.load()
    board.play("success")
    assert board.requested == [("success", False)]


def test_soundboard_plays_and_can_be_silenced(tmp_path: Path) -> None:
    """With a working loader the sound plays; staff can mute it."""
    played: list[str] = []

    class FakeSound:
        """Stands in for a Kivy Sound."""

        def __init__(self, path: str) -> None:
            """Remember the file."""
            self.path = path

        def stop(self) -> None:
            """Nothing to stop."""

        def play(self) -> None:
            """Record the play."""
            played.append(Path(self.path).stem.split("-")[0])

    board = sounds.SoundBoard(directory=tmp_path, loader=FakeSound)
    board.load()
    board.play("already")
    board.enabled = False
    board.play("success")
    assert played == ["already"]
    assert board.requested == [("already", True), ("success", False)]


def test_pin_is_only_stored_as_a_salted_hash() -> None:
    """Hash and verify; wrong PIN, no hash, or garbage never verify."""
    encoded = hash_pin("2580", iterations=1000)
    assert "2580" not in encoded
    assert verify_pin("2580", encoded)
    assert not verify_pin("2581", encoded)
    assert not verify_pin("2580", None)
    assert not verify_pin("2580", "garbage")
    assert hash_pin("2580", iterations=1000) != encoded  # a fresh salt each time
    with pytest.raises(ValueError, match="4 to 12 digits"):
        hash_pin("12a4")


def test_missing_korean_font_fails_with_the_fix(tmp_path: Path) -> None:
    """No silent fallback to a font without Hangul."""
    with pytest.raises(FontMissingError, match="fonts-nanum"):
        register_korean_font(tmp_path / "none.ttf", tmp_path / "none-bold.ttf")


def test_default_font_files_are_installed() -> None:
    """fonts-nanum is a system package of the project (system-packages.txt)."""
    settings = KioskSettings()
    assert settings.font_regular.is_file(), "apt-get install fonts-nanum"
    assert settings.font_bold.is_file()


def test_cli_registers_kiosk_subcommands() -> None:
    """`welfare kiosk run|screenshots|bench|hash-pin`."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kiosk", "screenshots", "--out", "x"])
    assert args.out == Path("x")
    assert callable(args.handler)
    args = parser.parse_args(["kiosk", "bench", "--taps", "5"])
    assert args.taps == 5
    args = parser.parse_args(["kiosk", "run", "--demo"])
    assert args.demo


def test_a_tap_that_could_not_be_kept_is_refused_on_screen_with_the_reason() -> None:
    """Disk full: the refusal screen and sound, the agent's message, no staff override."""
    from edge_agent.link import tap_result_from_json, tap_result_to_json
    from edge_agent.store import STORAGE_FULL_MESSAGE

    full = result(None, problem=STORAGE_FULL_MESSAGE)
    again = tap_result_from_json(tap_result_to_json(full))  # as the view receives it
    assert again == full
    assert not again.needs_choice
    shown = texts.present(again)
    assert (shown.screen, shown.sound) == ("refused", "refused")
    assert shown.detail == STORAGE_FULL_MESSAGE
    assert not shown.can_override
