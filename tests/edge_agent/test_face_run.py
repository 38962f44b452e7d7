"""`welfare edge run` with face enabled, as a real process: it opens the (still-image) camera,
matches the photo in front of it against its roster's sealed templates and asks the UI over
the link; 예 records one check-in with method face."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from PIL import Image

from broker.models import ProgramSession, Roster, RosterMember
from broker.vocabulary import Method, Outcome, ProgramKind
from edge_agent.link import LinkClient
from edge_agent.models import TapResult
from tests.edge_agent.meal_hall import KEY
from tests.edge_agent.test_face_roster import template
from tests.hardware.faces import variant_encoding, variants

ROOT = Path(__file__).parents[2]


def roster() -> Roster:
    """A meal served all day, every day; M4 (the astronaut) enrolled for face match."""
    her = variant_encoding("dim light")
    assert her is not None
    return Roster(
        facility_id="B",
        device_id="kiosk-1",
        version="v1",
        issued_at=datetime.now(UTC),
        programs=[
            ProgramSession(
                program_id="MEAL",
                name="경로식당",
                kind=ProgramKind.MEAL,
                weekdays=[1, 2, 3, 4, 5, 6, 7],
                starts=time(0, 0),
                ends=time(23, 59, 59),
            )
        ],
        members=[
            RosterMember(
                member_ref="M4",
                display_name="최*례",
                program_ids=["MEAL"],
                face_template=template("M4", her),
            )
        ],
    )


async def test_edge_run_opens_the_camera_and_asks_before_recording(tmp_path: Path) -> None:
    """The process's camera shows her photo: the question arrives, 예 checks her in by face."""
    (tmp_path / "roster.json").write_text(roster().model_dump_json())
    socket = tmp_path / "link.sock"
    env = dict(
        os.environ,
        WELFARE_FACILITY_ID="B",
        WELFARE_DEVICE_ID="kiosk-1",
        WELFARE_CREDENTIAL_KEY=KEY,
        WELFARE_DATABASE=str(tmp_path / "edge.sqlite3"),
        WELFARE_LINK_SOCKET=str(socket),
        WELFARE_METRICS_PORT="off",
        WELFARE_HARDWARE__FACE="true",
        WELFARE_HARDWARE__CAMERA=f"image:{tmp_path / 'camera.png'}",
        PYTHONPATH=str(ROOT),
    )
    for name in [k for k in env if k.startswith("WELFARE_MQTT")]:
        del env[name]
    proc = subprocess.Popen(  # noqa: ASYNC220 - the agent under test runs for the whole test
        [
            sys.executable,
            "-m",
            "welfare.cli",
            "edge",
            "run",
            "--no-hardware",
            "--roster",
            str(tmp_path / "roster.json"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    questions: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    taps: asyncio.Queue[TapResult] = asyncio.Queue()
    view = LinkClient(socket, on_face=questions.put_nowait, on_tap=taps.put_nowait)
    reader = asyncio.create_task(view.run())
    try:
        await view.wait_connected(within=60)
        await asyncio.sleep(0.5)  # subscribed
        # Nobody in front until now (no picture); she steps up.
        Image.fromarray(variants()["mirrored"]).save(tmp_path / "camera.png")
        question = await asyncio.wait_for(questions.get(), 60)
        assert question["display_name"] == "최*례"
        assert await view.face_answer(question["token"], yes=True)
        result = await asyncio.wait_for(taps.get(), 30)
        assert result.member_ref == "M4"
        assert result.method is Method.FACE
        assert result.outcome is Outcome.ACCEPTED
    finally:
        await view.close()
        reader.cancel()
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"face match on" in err
