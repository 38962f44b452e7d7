"""`welfare edge run` as its systemd unit runs it: ready, watchdog pings, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.tls import ensure_tls
from edge_agent.config import CONFIG_FILE_ENV
from edge_agent.systemd import service
from tests.edge_agent.conftest import KEY
from welfare.provision import toml_text


def _unit_environment(tmp_path: Path, notify: Path) -> dict[str, str]:
    """What welfare-edge.service gives the agent: a TOML file, a credentials directory."""
    config = tmp_path / "edge.toml"
    tls = ensure_tls(tmp_path / "tls", hosts=["127.0.0.1"])
    config.write_text(
        toml_text(
            {
                "facility_id": "B",
                "device_id": "meal-1",
                "database": tmp_path / "state" / "edge.sqlite3",
                "link_socket": tmp_path / "run" / "edge-link.sock",
                # A broker that is not there: the agent decides and keeps events regardless.
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": 9,
                    "username": "B.meal-1",
                    "ca_file": tls.ca_file,
                },
            }
        )
    )
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "welfare_credential_key").write_text(KEY.decode())
    (credentials / "welfare_mqtt__password").write_text("Xq7ZpL2mR9vT4kWs3nBd")
    (tmp_path / "state").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WELFARE_")}
    env.update(
        {
            CONFIG_FILE_ENV: str(config),
            "CREDENTIALS_DIRECTORY": str(credentials),
            "NOTIFY_SOCKET": str(notify),
            "WATCHDOG_USEC": "400000",  # WatchdogSec=0.4: a ping every 0.2 s
        }
    )
    return env


def _collect(sock: socket.socket, *, within: float) -> list[str]:
    """Every datagram received in the next `within` seconds."""
    got: list[str] = []
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def _receive(sock: socket.socket, *, until: str, within: float) -> list[str]:
    """Datagrams received until one starts with `until` (or fail after `within` seconds)."""
    got: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if got[-1].startswith(until):
            return got
    raise AssertionError(f"no {until!r} within {within}s; got {got}")


def test_the_agent_notifies_ready_pings_its_watchdog_and_stops_cleanly(tmp_path: Path) -> None:
    """READY=1 once serving, WATCHDOG=1 every half period, STOPPING=1 and exit 0 on SIGTERM."""
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        proc = subprocess.Popen(
            [sys.executable, "-m", "welfare.cli", "edge", "run", "--no-hardware"],
            env=_unit_environment(tmp_path, notify),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            ready = _receive(sock, until="READY=1", within=60)
            assert "STATUS=kiosk B/meal-1 deciding" in ready[-1]
            started = time.monotonic()
            pings = [m for m in _collect(sock, within=1.2) if m == "WATCHDOG=1"]
            assert len(pings) >= 3, pings  # every 0.2 s while alive
            assert (tmp_path / "run" / "edge-link.sock").exists()
            proc.send_signal(signal.SIGTERM)
            _receive(sock, until="STOPPING=1", within=20)
            assert proc.wait(20) == 0
            assert time.monotonic() - started < 30
        finally:
            if proc.poll() is None:
                proc.kill()
            output = proc.communicate()[0]
    assert "Traceback" not in output, output
    assert (tmp_path / "state" / "edge.sqlite3").exists()


async def test_a_hung_check_stops_the_pings_so_systemd_restarts_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pings only while the service's own check passes within the period."""
    notify = tmp_path / "notify.sock"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    healthy = asyncio.Event()
    healthy.set()

    async def check() -> bool:
        await healthy.wait()  # a hung database would block here
        return True

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.setblocking(False)
        async with service(check):
            await asyncio.sleep(0.45)
            alive = _drain(sock)
            healthy.clear()
            await asyncio.sleep(0.1)
            _drain(sock)
            await asyncio.sleep(0.5)
            hung = _drain(sock)
        stopped = _drain(sock)
    assert alive[0].startswith("READY=1")
    assert alive.count("WATCHDOG=1") >= 3
    assert hung == []
    assert stopped == ["STOPPING=1"]


def _drain(sock: socket.socket) -> list[str]:
    """The datagrams waiting on a non-blocking socket."""
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got
