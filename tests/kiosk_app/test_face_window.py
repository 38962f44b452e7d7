"""The face question in a real Kivy window under Xvfb (tests/kiosk_app/face_flows.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.kiosk_app.test_kiosk_window import HERE, ROOT, display, gui_env

pytestmark = pytest.mark.kiosk
__all__ = ["display"]  # the module-scoped Xvfb fixture


@pytest.fixture(scope="module")
def face_report(display: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the face flows in one window process."""
    out = tmp_path_factory.mktemp("kiosk-face") / "report.json"
    proc = subprocess.run(
        [sys.executable, str(HERE / "face_flows.py"), str(out)],
        env=gui_env(display),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in data, data.get("error")
    return data


def test_a_face_match_asks_with_the_masked_name_and_two_large_buttons(
    face_report: dict[str, Any],
) -> None:
    """ "김*수 님이 맞으세요?" with 예 and 아니요, each at least 1.5 touch targets tall."""
    texts = face_report["question_texts"]
    assert "김*수 님이 맞으세요?" in texts, texts
    assert {"예", "아니요"} <= set(texts), texts
    assert all(h >= 1.5 * face_report["target_px"] for h in face_report["button_heights"])


def test_yes_records_one_face_attendance_and_shows_success(face_report: dict[str, Any]) -> None:
    """After 예: accepted, method face, the success screen names the member."""
    yes = face_report["yes"]
    assert yes["outcome"] == "accepted"
    assert yes["method"] == "face"
    assert yes["events"] == 1
    assert "김*수 님" in yes["screen_texts"], yes["screen_texts"]


def test_no_and_no_answer_record_nothing(face_report: dict[str, Any]) -> None:
    """아니요, or no answer before the time runs out: nothing recorded, back to idle."""
    assert face_report["no"] == {"result": False, "events": 1}
    assert face_report["timeout"] == {"result": False, "events": 1}


def test_a_face_question_never_interrupts_staff_at_work(face_report: dict[str, Any]) -> None:
    """On a staff screen the question is answered no at once; the staff screen stays."""
    busy = face_report["staff_busy"]
    assert busy["result"] is False
    assert busy["screen"] == "staff"
    assert busy["answered_in_s"] < 5  # not the 10 s timeout
    assert busy["events"] == 1


def test_docs_hold_the_face_question_screenshot() -> None:
    """docs/screens/face_confirm.png is committed (face_flows.py REPORT PNG makes it)."""
    assert (ROOT / "docs" / "screens" / "face_confirm.png").exists()
