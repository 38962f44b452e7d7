"""The face question in one real kiosk window (run by test_face_window.py under Xvfb).

`python face_flows.py REPORT.json [SCREENSHOT.png]`: the demo agent's member M001 (김민수) has
a face template; a face match through `FaceIdentifier` with the link's `confirm_face` puts
"김*수 님이 맞으세요?" on screen; 예 records one `face` attendance and shows success; 아니요 and
a timeout record nothing. The report says what happened; the optional PNG is the screen.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from broker.models import FaceTemplate
from kiosk_app.boot import prepare_kivy
from kiosk_app.settings import KioskSettings

PIN = "7391"
VECTOR = np.linspace(-0.2, 0.2, 128)


async def face_events(ui: Any) -> list[Any]:
    """The face attendances in the agent's store."""
    return [e for e in await ui.agent.agent.store.all_events() if e.method.value == "face"]


async def flows(ui: Any, shot: Path | None) -> dict[str, Any]:
    """Ask three times: answered 예, 아니요, and not at all."""
    from edge_agent.face import FaceIdentifier
    from hardware.face.camera import StillCamera
    from hardware.face.matcher import FaceMatcher
    from kiosk_app import demo

    agent = ui.agent.agent
    roster = demo.demo_roster(key=demo.DEMO_KEY.encode())
    members = [
        m.model_copy(update={"face_template": FaceTemplate(key_id="0" * 16, sealed="AA==")})
        if m.member_ref == "M001"
        else m
        for m in roster.members
    ]
    await agent.load_roster(roster.model_copy(update={"members": members}))
    matcher = FaceMatcher()
    matcher.add("M001", VECTOR)
    server = ui.agent.server
    report: dict[str, Any] = {}

    async def ask(within: float) -> Any:
        """One face match whose confirmation goes to the window."""
        identifier = FaceIdentifier(
            agent,
            StillCamera(),
            None,  # type: ignore[arg-type]  # decide() takes the descriptor directly
            matcher,
            confirm=lambda m: server.confirm_face(m, within=within),
        )
        return await identifier.decide(VECTOR)

    # 1. 예: one face attendance, the success screen with the masked name.
    started = time.perf_counter()
    task = asyncio.create_task(ask(10.0))
    await ui.wait_screen("face_confirm")
    report["question_s"] = time.perf_counter() - started
    report["question_texts"] = ui.texts()
    if shot is not None:
        await ui.screenshot(shot)
    await ui.press("예")
    attempt = await task
    await ui.wait_screen("success")
    report["yes"] = {
        "outcome": attempt.result.outcome.value if attempt.result else None,
        "method": attempt.result.method.value if attempt.result else None,
        "screen_texts": ui.texts(),
        "events": len(await face_events(ui)),
    }
    ui.app.go_idle()
    await ui.wait_screen("idle")
    # 2. 아니요: nothing recorded, back to idle.
    task = asyncio.create_task(ask(10.0))
    await ui.wait_screen("face_confirm")
    await ui.press("아니요")
    attempt = await task
    await ui.wait_screen("idle")
    report["no"] = {"result": attempt.result is not None, "events": len(await face_events(ui))}
    # 3. No answer: the agent gives up, the window returns to idle, nothing recorded.
    task = asyncio.create_task(ask(2.0))
    await ui.wait_screen("face_confirm")
    attempt = await task
    await ui.wait_screen("idle", within=5)
    report["timeout"] = {
        "result": attempt.result is not None,
        "events": len(await face_events(ui)),
    }
    # 4. Staff at work on the kiosk: the question does not interrupt them; answered no.
    await ui.press("직원")
    await ui.wait_screen("pin")
    await ui.enter_pin(PIN)
    await ui.wait_screen("staff")
    started = time.perf_counter()
    attempt = await ask(10.0)
    report["staff_busy"] = {
        "result": attempt.result is not None,
        "screen": ui.screen,
        "answered_in_s": time.perf_counter() - started,
        "events": len(await face_events(ui)),
    }
    report["button_heights"] = [
        ui.app.screen("face_confirm").ids[name].height for name in ("yes", "no")
    ]
    report["target_px"] = ui.app.target_px
    return report


def main(out: Path, shot: Path | None) -> int:
    """Open the window, run the flows, write the report."""
    prepare_kivy(KioskSettings())
    from kiosk_app import harness

    async def body(ui: Any) -> dict[str, Any]:
        """The flows, or the reason they failed."""
        try:
            return await asyncio.wait_for(flows(ui, shot), 120)
        except BaseException as exc:
            return {"error": "".join(traceback.format_exception(exc))}

    with tempfile.TemporaryDirectory(prefix="kiosk-face-") as tmp:
        report = asyncio.run(harness.run_ui(Path(tmp), body, pin=PIN, success_s=30.0))
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
