"""The edge process's settings: the environment names it reads, and the secrets it refuses."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.const import DEFAULT_TIMEZONE
from edge_agent.agent import EdgeAgent
from edge_agent.cli import register
from edge_agent.config import EdgeSettings
from tests.edge_agent.conftest import CARDS, KEY, make_roster

PASSWORD = "Xq7ZpL2mR9vT4kWs3nBd"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WELFARE_* variable of the machine running the tests leaks into these settings."""
    for name in list(os.environ):
        if name.startswith("WELFARE_"):
            monkeypatch.delenv(name)


def kiosk_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables a provisioned kiosk has (see docs/edge.md)."""
    monkeypatch.setenv("WELFARE_FACILITY_ID", "B")
    monkeypatch.setenv("WELFARE_DEVICE_ID", "k1")
    monkeypatch.setenv("WELFARE_DATABASE", str(tmp_path / "edge.sqlite3"))
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", KEY.decode())


def test_settings_come_from_the_shared_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Facility, key, broker and drivers are read from WELFARE_*, nested with '__'."""
    kiosk_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("WELFARE_MQTT__HOST", "center.local")
    monkeypatch.setenv("WELFARE_MQTT__PORT", "8883")
    monkeypatch.setenv("WELFARE_MQTT__USERNAME", "B.k1")
    monkeypatch.setenv("WELFARE_MQTT__PASSWORD", PASSWORD)
    monkeypatch.setenv("WELFARE_HARDWARE__PRINTER", "usb:04b8:0202")
    monkeypatch.setenv("WELFARE_HARDWARE__GPIO", "true")
    settings = EdgeSettings()
    assert (settings.facility_id, settings.device_id) == ("B", "k1")
    assert settings.database == tmp_path / "edge.sqlite3"
    assert settings.credential_key.get_secret_value() == KEY.decode()
    assert settings.timezone == DEFAULT_TIMEZONE
    assert settings.mqtt is not None
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.username) == (
        "center.local",
        8883,
        "B.k1",
    )
    assert settings.mqtt.password_value() == PASSWORD
    assert settings.hardware.printer == "usb:04b8:0202"
    assert settings.hardware.gpio
    assert settings.hardware.card_wedge == "/dev/input/welfare-card"  # the udev name


def test_without_broker_variables_the_agent_runs_stand_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No WELFARE_MQTT__*: nothing is published, events wait in the outbox."""
    kiosk_environment(monkeypatch, tmp_path)
    assert EdgeSettings().mqtt is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WELFARE_CREDENTIAL_KEY", "k" * 32),
        ("WELFARE_CREDENTIAL_KEY", "short-key"),
        ("WELFARE_CREDENTIAL_KEY", "changeme-changeme-changeme"),
        ("WELFARE_MQTT__PASSWORD", "password-password"),
        ("WELFARE_MQTT__PASSWORD", "tooShort1"),
    ],
)
def test_placeholder_secrets_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    """A weak card-hash key or broker password stops the agent before it records anything."""
    kiosk_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("WELFARE_MQTT__USERNAME", "B.k1")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        EdgeSettings()


def test_edge_status_reads_the_device_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`welfare edge status` prints the outbox state of the device the environment names."""
    kiosk_environment(monkeypatch, tmp_path)

    async def one_tap() -> None:
        """Record one event on the device, as the running agent would have."""
        async with EdgeAgent(EdgeSettings()) as agent:
            await agent.load_roster(make_roster())
            await agent.tap(CARDS["meal"])

    asyncio.run(one_tap())
    parser = argparse.ArgumentParser(prog="welfare")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["edge", "status"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out.strip() == "pending=1 confirmed=0 parked=0"
