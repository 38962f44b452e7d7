"""The kiosk in a real Kivy window under Xvfb: every flow, the screenshots command."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk_app.harness import SCREENS, xvfb

pytestmark = pytest.mark.kiosk

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
# The checks ui_flows.py runs, in order (kept in sync by test_every_flow_was_run).
FLOWS = (
    "idle_screen",
    "meal_success",
    "success_returns_to_idle_by_itself",
    "already_served_gives_no_second_ticket",
    "staff_override_issues_a_ticket",
    "unknown_card_goes_to_staff",
    "inactive_member_goes_to_staff",
    "several_classes_one_button_each",
    "class_already_checked_in",
    "wrong_pin_is_refused",
    "staff_registers_a_visitor",
    "staff_sees_todays_counts",
    "staff_can_silence_the_sound",
    "offline_badge_never_blocks",
    "ui_reconnects_when_the_agent_link_restarts",
    "demo_keyboard_reader",
    "every_screen_meets_size_rules",
)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb display (picked free by Xvfb itself), stopped after the module."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: `make system-deps` installs it (system-packages.txt)")
    with xvfb() as name:
        yield name


def gui_env(display: str) -> dict[str, str]:
    """Environment of a window process: our display, no audio hardware needed."""
    env = dict(os.environ)
    env.update(
        DISPLAY=display,
        SDL_AUDIODRIVER="dummy",  # sounds load and "play" without a sound card
        KIVY_NO_ARGS="1",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="module")
def report(display: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every flow in one window process (Kivy allows one window per process)."""
    out = tmp_path_factory.mktemp("kiosk-ui") / "report.json"
    proc = subprocess.run(
        [sys.executable, str(HERE / "ui_flows.py"), str(out)],
        env=gui_env(display),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,  # below pytest-timeout's 300 s, so the reason is reported
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.exists(), proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_every_flow_was_run(report: dict[str, Any]) -> None:
    """The list above matches the checks in ui_flows.py."""
    assert [k for k in report if not k.startswith("_")] == list(FLOWS)


@pytest.mark.parametrize("flow", FLOWS)
def test_flow(report: dict[str, Any], flow: str) -> None:
    """One flow driven in the window: taps, touches, what the screen and store show."""
    entry = report[flow]
    assert entry["ok"], entry["error"]


def test_a_sound_is_requested_for_every_outcome(report: dict[str, Any]) -> None:
    """Success, already served, refusal and choice each asked for their own sound."""
    names = {name for name, _audible in report["_sounds"]["requested"]}
    assert {"success", "already", "refused", "choose"} <= names


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_screenshots_command_renders_every_screen(display: str, tmp_path: Path) -> None:
    """`welfare kiosk screenshots` writes one full-window PNG per screen."""
    proc = subprocess.run(
        [sys.executable, "-m", "welfare.cli", "kiosk", "screenshots", "--out", str(tmp_path)],
        env=gui_env(display),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,  # below pytest-timeout's 300 s, so the reason is reported
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name, _what in SCREENS:
        path = tmp_path / name
        assert path.exists(), name
        assert png_size(path) == (1280, 800)
        assert path.stat().st_size > 10_000, f"{name} looks empty"


def test_docs_screens_hold_every_screen() -> None:
    """docs/screens/ has the committed screenshot of every screen."""
    folder = ROOT / "docs" / "screens"
    missing = [name for name, _ in SCREENS if not (folder / name).exists()]
    assert not missing, f"run `welfare kiosk screenshots --out docs/screens`: {missing}"
