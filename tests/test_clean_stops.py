"""Every long-running command stops on SIGTERM (and SIGINT) and leaves no process behind.

`timeout`, systemd and container runtimes stop a service with SIGTERM; a command that only
cleaned up on Ctrl-C would leave its PostgreSQL, Mosquitto or consumer running. Each test
starts the real command, waits until it serves, notes every process it started (its
descendants, and any process naming the test's own directory, which catches a daemonised
PostgreSQL), sends the signal and checks that it exits and that none of them remain.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.auth import DeviceIdentity
from kiosk_app.harness import xvfb
from tests.conftest import BrokerFactory, ingest_password
from tests.edge_agent.test_systemd import _unit_environment
from welfare.services.ports import free_port, wait_for_port


def _processes() -> dict[int, tuple[int, str]]:
    """Every process now: pid -> (parent pid, command line)."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name in parentheses may hold spaces: the fields follow the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (ppid, cmdline)
    return found


def _started_by(pid: int, marker: Path) -> set[int]:
    """The descendants of `pid` and every process whose command line names `marker`."""
    table = _processes()
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, (parent, _cmd) in table.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    family |= {p for p, (_pp, cmd) in table.items() if str(marker) in cmd}
    family.discard(os.getpid())
    return family


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has exited)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _stop_and_check(
    proc: subprocess.Popen[str], marker: Path, signum: int = signal.SIGTERM
) -> tuple[int, str]:
    """Signal the command, wait for it; nothing it started may remain. Returns (code, output)."""
    family = _started_by(proc.pid, marker)
    proc.send_signal(signum)
    try:
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.communicate()[0]
    deadline = time.monotonic() + 15
    while _alive(family - {proc.pid}) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _alive(family - {proc.pid})
    table = _processes()
    assert not left, {p: table.get(p) for p in left}
    assert "Traceback" not in output, output[-3000:]
    return code, output


def _wait_for_line(proc: subprocess.Popen[str], text: str, within: float) -> str:
    """Read the command's output until a line holds `text`."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} within {within}s:\n{''.join(seen)[-3000:]}")


# Ctrl-C as a terminal delivers it: a shell's background job inherits SIGINT ignored, and
# Python keeps an inherited SIG_IGN, so the child puts Python's own handler back first.
_AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'welfare'; runpy.run_module('welfare.cli', run_name='__main__')"
)


def _welfare(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `welfare …` as a user would."""
    return subprocess.Popen(
        [sys.executable, "-c", _AS_FROM_A_TERMINAL, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_demo_serve_stops_its_postgresql_and_mosquitto(tmp_path: Path, signum: int) -> None:
    """`welfare demo --serve` on its bundled PostgreSQL and own Mosquitto, stopped by signal."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path)  # the demo's servers live under this test's directory
    proc = _welfare("demo", "--pace", "0", "--serve", env=env)
    try:
        _wait_for_line(proc, "serving until", within=300)
        started = _started_by(proc.pid, tmp_path)
        assert any("mosquitto" in _processes().get(p, (0, ""))[1] for p in started), started
        assert any("postgres" in _processes().get(p, (0, ""))[1] for p in started), started
        code, output = _stop_and_check(proc, tmp_path, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code in (0, 130), output
    assert "stopped: nothing left running" in output


def test_fleet_screenshots_serve_stops_its_postgresql_and_service(tmp_path: Path) -> None:
    """`welfare fleet screenshots --serve` (the dashboard on a sample day), stopped by SIGTERM."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TMPDIR"] = str(tmp_path)  # its database lives under this test's directory
    proc = _welfare("fleet", "screenshots", "--out", str(tmp_path / "shots"), "--serve", env=env)
    try:
        _wait_for_line(proc, "serving until", within=300)
        started = _started_by(proc.pid, tmp_path)
        assert any("postgres" in _processes().get(p, (0, ""))[1] for p in started), started
        code, output = _stop_and_check(proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "fleet_1_overview.png",
        "fleet_2_device.png",
    ]


def test_ingest_run_and_consume_stop_on_sigterm(
    tmp_path: Path, database_url: str, broker_factory: BrokerFactory
) -> None:
    """`welfare ingest run` (API and consumer) and `welfare ingest consume` end on SIGTERM."""
    broker = broker_factory([DeviceIdentity("B", "meal-1")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
    env.update(
        DATABASE_URL=database_url,
        WELFARE_MQTT__PORT=str(broker.port),
        WELFARE_MQTT__PASSWORD=ingest_password(broker),
    )
    port = free_port()
    run = _welfare("ingest", "run", "--port", str(port), env=env | {"WELFARE_CONSUMER_ID": "a"})
    try:
        wait_for_port(port, timeout=60)
        # The broker is the test's own (it lives under tmp_path): only descendants count here.
        code, _ = _stop_and_check(run, tmp_path / "ingest-run")
        # uvicorn ends its lifespan (the consumer stops) and re-raises the signal it caught.
        assert code in (0, -signal.SIGTERM), code
    finally:
        if run.poll() is None:
            run.kill()
    consume = _welfare("ingest", "consume", env=env | {"WELFARE_CONSUMER_ID": "b"})
    try:
        _wait_for_line(consume, "consumer b started", within=60)
        code, _ = _stop_and_check(consume, tmp_path / "ingest-consume")
        assert code == 0
    finally:
        if consume.poll() is None:
            consume.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_edge_run_without_readers_keeps_running_then_stops(tmp_path: Path, signum: int) -> None:
    """No reader configured: the agent says so and keeps serving; a signal stops it (exit 0)."""
    notify = tmp_path / "notify.sock"
    env = _unit_environment(tmp_path, notify)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env["WELFARE_HARDWARE__CARD_WEDGE"] = ""  # no card reader (and no NFC, no serial reader)
    proc = _welfare("edge", "run", env=env)
    try:
        _wait_for_line(proc, "no card or NFC reader is configured", within=60)
        time.sleep(1.5)
        assert proc.poll() is None, "the agent exited although it has nothing wrong but no reader"
        code, _ = _stop_and_check(proc, tmp_path, signum)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0


@pytest.mark.kiosk
def test_kiosk_run_demo_stops_on_sigterm(tmp_path: Path) -> None:
    """`welfare kiosk run --demo` (the UI and an in-process agent) closes on SIGTERM."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is missing: `make system-deps` installs it (system-packages.txt)")
    with xvfb() as display:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
        env.update(
            DISPLAY=display,
            SDL_AUDIODRIVER="dummy",
            KIVY_NO_ARGS="1",
            KIVY_HOME=str(tmp_path / "kivy"),
            TMPDIR=str(tmp_path),
            WELFARE_KIOSK_SOUND_DIR=str(tmp_path / "sounds"),
        )
        proc = _welfare("kiosk", "run", "--demo", env=env)
        try:
            _wait_for_line(proc, "demo card reader", within=120)
            time.sleep(5)  # the window opens
            assert proc.poll() is None
            code, _ = _stop_and_check(proc, tmp_path)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
