"""`welfare kiosk run` as welfare-kiosk.service runs it, in a real window under Xvfb."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk_app.harness import xvfb
from tests.edge_agent.test_systemd import _collect, _receive

pytestmark = pytest.mark.kiosk


def test_the_screen_notifies_ready_pings_from_its_frame_clock_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """READY=1 once the window is up, WATCHDOG=1 from Kivy's clock, STOPPING=1 and exit 0."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: `make system-deps` installs it (system-packages.txt)")
    notify = tmp_path / "notify.sock"
    with xvfb() as display, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
        env.update(
            DISPLAY=display,
            SDL_AUDIODRIVER="dummy",
            KIVY_NO_ARGS="1",
            KIVY_HOME=str(tmp_path / "kivy"),
            NOTIFY_SOCKET=str(notify),
            WATCHDOG_USEC="1000000",
            # No agent yet (it starts after the screen on a slow boot): the screen waits.
            WELFARE_KIOSK_LINK_SOCKET=str(tmp_path / "edge-link.sock"),
            WELFARE_KIOSK_SOUND_DIR=str(tmp_path / "sounds"),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "welfare.cli", "kiosk", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _receive(sock, until="READY=1", within=120)
            pings = [m for m in _collect(sock, within=2.0) if m == "WATCHDOG=1"]
            assert len(pings) >= 2, pings
            proc.send_signal(signal.SIGTERM)
            _receive(sock, until="STOPPING=1", within=30)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0]
    assert "Traceback" not in output, output[-3000:]
