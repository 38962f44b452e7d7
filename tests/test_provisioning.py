"""docs/provisioning.md is true: its files exist, its units validate, its commands parse."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from broker.keys import facility_key
from edge_agent.config import CONFIG_FILE_ENV
from welfare.cli import build_parser
from welfare.provision import KIOSK_DIR

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "provisioning.md"
FIRMWARE = ROOT / "firmware_config"
UNITS = ("welfare-edge.service", "welfare-kiosk.service")
INSTALLED = "/opt/welfare/venv/bin/welfare"


Unit = dict[str, dict[str, list[str]]]


def _unit(name: str) -> Unit:
    """A unit file: section -> key -> every value (systemd keys like LoadCredential= repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for line in (FIRMWARE / name).read_text().splitlines():
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("[") and text.endswith("]"):
            section = unit.setdefault(text[1:-1], {})
            continue
        key, sep, value = text.partition("=")
        assert sep, f"{name}: not a key=value line: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def _one(unit: Unit, section: str, key: str) -> str:
    """The single value of a key."""
    (value,) = unit[section][key]
    return value


def _shell_lines() -> list[str]:
    """Every command line in the guide's ```sh blocks, comments removed."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        for line in block.splitlines():
            text = line.split("   #")[0].strip()
            if text:
                lines.append(text)
    return lines


def test_every_file_the_guide_names_exists_and_every_kiosk_file_is_in_the_guide() -> None:
    """No step points at a missing file, and no file in firmware_config/ is left unexplained."""
    named = set(re.findall(r"firmware_config/([A-Za-z0-9_.-]+)", DOC.read_text()))
    assert named, "the guide names no file of firmware_config/"
    missing = sorted(n for n in named if not (FIRMWARE / n).is_file())
    assert missing == []
    unexplained = sorted(p.name for p in FIRMWARE.iterdir() if p.name not in named)
    assert unexplained == []


@pytest.mark.parametrize("name", UNITS)
def test_the_units_validate_with_systemd_analyze(name: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing to say (a warning counts as a failure).

    It checks that ExecStart's program exists: the installed path (/opt/welfare/venv, step 7)
    is pointed at this test's own `welfare` for the check, nothing else is changed.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (the parser checks below still run)")
    here = Path(sys.executable).with_name("welfare")
    assert here.exists()
    text = (FIRMWARE / name).read_text()
    assert INSTALLED in text
    (tmp_path / name).write_text(text.replace(INSTALLED, str(here)))
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_starts_on_boot_restarts_keeps_a_watchdog_and_stops_cleanly(name: str) -> None:
    """What step 8 promises, read from the unit files themselves."""
    unit = _unit(name)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = {key: values[-1] for key, values in unit["Service"].items()}
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always"
    assert _one(unit, "Unit", "StartLimitIntervalSec") == "0"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 0
    assert _one(unit, "Install", "WantedBy") == "multi-user.target"
    assert service["User"] == "welfare"
    # A read-only root: writes go to the state directory (the data partition) only.
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "welfare"
    command = shlex.split(service["ExecStart"])
    assert command[0] == INSTALLED
    build_parser().parse_args(command[1:])  # a command `welfare` knows


def test_the_agents_unit_reads_exactly_the_bundle_welfare_device_writes(tmp_path: Path) -> None:
    """Its settings file and its two secrets are the files of the bundle, by name."""
    from broker.tls import ensure_tls
    from welfare.provision import write_bundle

    unit = _unit("welfare-edge.service")
    assert unit["Unit"]["RequiresMountsFor"] == ["/var/lib/welfare"]
    assert unit["Service"]["RuntimeDirectory"] == ["welfare"]
    assert unit["Service"]["Environment"] == [f"{CONFIG_FILE_ENV}={KIOSK_DIR}/edge.toml"]
    credentials = dict(c.split(":", 1) for c in unit["Service"]["LoadCredential"])
    tls = ensure_tls(tmp_path / "tls", hosts=["center.example.org"])
    bundle = write_bundle(
        tmp_path / "bundles",
        facility_id="B",
        device_id="meal-1",
        password="Jd7g5bJxvaSZu-generated-0123",
        credential_key=facility_key(
            b"a-center-master-key-0123456789ab", facility_id="B", version=1
        ),
        mqtt_host="center.example.org",
        mqtt_port=8883,
        ca_file=tls.ca_file,
    )
    secrets = sorted(p.name for p in (bundle / "secrets").iterdir())
    assert sorted(credentials) == secrets
    assert credentials == {name: f"{KIOSK_DIR}/secrets/{name}" for name in secrets}
    kiosk = _unit("welfare-kiosk.service")
    assert "welfare-edge.service" in " ".join(kiosk["Unit"]["After"])
    socket = [e for e in kiosk["Service"]["Environment"] if "LINK_SOCKET" in e]
    assert socket == ["WELFARE_KIOSK_LINK_SOCKET=/run/welfare/edge-link.sock"]
    assert 'link_socket = "/run/welfare/edge-link.sock"' in (bundle / "edge.toml").read_text()


def test_every_welfare_command_in_the_guide_parses() -> None:
    """A command a reader copies from the guide is one `welfare` accepts."""
    commands = [
        shlex.split(line.removeprefix(INSTALLED).removeprefix("welfare"))
        for line in _shell_lines()
        if line.startswith(("welfare ", f"{INSTALLED} "))
    ]  # fmt: skip
    assert len(commands) >= 5
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)
