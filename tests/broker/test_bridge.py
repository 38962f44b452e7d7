"""The center broker's configuration: peer ACLs, the bridge account, the bridge section."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from broker.auth import DeviceIdentity, acl_text, bridge_username, device_acl_block
from broker.brokerdir import BrokerDir
from broker.cli import register
from broker.mosquitto import bridge_lines, render_config


def test_a_device_writes_only_its_own_peer_topic_and_reads_only_its_facilitys() -> None:
    """Peer lines of B/meal-1: its own topic to write, B's kiosks to read, nothing of E."""
    block = device_acl_block(DeviceIdentity("B", "meal-1"))
    peer = [line for line in block if line.endswith("/peer")]
    assert peer == ["topic write welfare/v1/B/meal-1/peer", "topic read welfare/v1/B/+/peer"]


def test_a_bridge_account_speaks_for_its_facilitys_devices_only() -> None:
    """On the city broker: B's bridge writes B's upstream, reads B's downstream, no peer."""
    acl = acl_text([], bridges=["B"])
    block = acl[acl.index("user bridge-B") :].strip().splitlines()
    assert block[0] == "user bridge-B"
    assert all("/B/+/" in line for line in block[1:])
    assert "topic write welfare/v1/B/+/attendance" in block
    assert "topic read welfare/v1/B/+/ack" in block
    assert not any("peer" in line for line in block)


def test_the_bridge_section_is_qos1_persistent_mqtt5_and_keeps_peer_local() -> None:
    """Mosquitto's own bridge: cleansession false, fixed client ids, v5, try_private."""
    text = bridge_lines(facility_id="B", host="city.example.org", port=8883, password="x" * 20)
    lines = text.splitlines()
    for expected in (
        "address city.example.org:8883",
        "cleansession false",
        "bridge_protocol_version mqttv50",
        "try_private true",
        "remote_clientid bridge-B",
        "local_clientid bridge-B-local",
        "remote_username bridge-B",
        "topic welfare/v1/B/+/attendance out 1",
        "topic welfare/v1/B/+/ack in 1",
    ):
        assert expected in lines, expected
    assert not any("peer" in line for line in lines)
    conf = render_config(port=1883, bind="127.0.0.1", data_dir=Path("data"), bridge=text)
    assert conf.endswith(text)


def test_city_config_gives_a_bridge_account_and_center_config_needs_its_password(
    tmp_path: Path,
) -> None:
    """`welfare broker config --bridge B` prints the account; --bridge-to checks its inputs."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    user = getpass.getuser()
    city = tmp_path / "city"
    args = parser.parse_args(
        ["broker", "config", "--out", str(city), "--no-tls", "--user", user, "--bridge", "B"]
    )
    assert args.handler(args) == 0
    assert bridge_username("B") in BrokerDir.open(city).users()
    assert BrokerDir.open(city).devices() == []  # a bridge is not a device
    center = tmp_path / "center"
    base = ["broker", "config", "--out", str(center), "--no-tls", "--user", user]
    missing = parser.parse_args([*base, "--bridge-to", "city:8883"])
    assert missing.handler(missing) == 2
    password = tmp_path / "bridge.pass"
    password.write_text("Zq8fK2mW7pL4xR9tV3nB\n")
    good = parser.parse_args(
        [
            *base,
            "--device",
            "B/meal-1",
            "--bridge-to",
            "city:8883",
            "--facility",
            "B",
            "--bridge-password-file",
            str(password),
        ]
    )
    assert good.handler(good) == 0
    conf = (center / "mosquitto.conf").read_text()
    assert "remote_password Zq8fK2mW7pL4xR9tV3nB" in conf
    assert (center / "mosquitto.conf").stat().st_mode & 0o077 == 0  # the password: root only
