"""Provisioning as an operator does it: a broker run as its own account on what we wrote.

`welfare broker config` and `welfare device add / rotate / remove` write the files; the real
Mosquitto is started as root and drops to the `mosquitto` account (Debian's), exactly as on a
center's server, and must accept the devices over TLS — and keep the others' sessions through
every reload.
"""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker.keys import facility_key
from edge_agent.config import load_bundle
from ingest_api.registry import devices, store
from ingest_api.registry.models import DeviceIn, Facility
from tests.fleet.conftest import MEAL
from tests.helpers import wait_until
from welfare.cli import main
from welfare.services.mosquitto import find_mosquitto
from welfare.services.ports import free_port, wait_for_port

MASTER = "provision-master-key-5b2e8d1c7a904f36"
ACCOUNT = "mosquitto"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="starts Mosquitto as root so that it drops to its own account"
)


def _account() -> pwd.struct_passwd:
    """The broker's account, made like Debian's package makes it when it is missing."""
    try:
        return pwd.getpwnam(ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", ACCOUNT],
            check=True,
        )
        return pwd.getpwnam(ACCOUNT)


class Session:
    """A device's MQTT session on the TLS listener; counts disconnects."""

    def __init__(self, port: int, ca: Path, username: str, password: str) -> None:
        """Connect and wait for the broker's answer."""
        self.connack: Any = None
        self.disconnects = 0
        self._event = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.tls_set_context(ssl.create_default_context(cafile=str(ca)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._event.wait(10), "no CONNACK"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        """Keep the answer."""
        self.connack = reason
        self._event.set()

    def _on_disconnect(self, *_a: Any) -> None:
        """Count it."""
        self.disconnects += 1

    @property
    def accepted(self) -> bool:
        """Whether the broker let it in."""
        return self.connack is not None and not self.connack.is_failure

    def publish_ok(self, topic: str) -> bool:
        """A QoS 1 publish the broker acknowledges."""
        info = self.client.publish(topic, b"{}", qos=1)
        info.wait_for_publish(10)
        return info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory the broker's account can reach (pytest's own tmp dirs are root's 0700)."""
    base = Path(tempfile.mkdtemp(prefix="welfare-broker-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def center(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Center B with its meal program; the environment `welfare device` reads."""
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음"))
        store.upsert_program(conn, program=MEAL)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", MASTER)
    return database_url


def _passwords(out: str) -> dict[str, str]:
    """`user<TAB>password` lines a command printed."""
    return dict(line.split("\t") for line in out.splitlines() if "\t" in line)


def _mode(path: Path) -> tuple[str, int]:
    """Owner name and permission bits."""
    info = path.stat()
    return pwd.getpwuid(info.st_uid).pw_name, stat.S_IMODE(info.st_mode)


def test_a_new_operators_first_try_starts_a_broker_and_device_changes_touch_only_that_device(
    broker_dir: Path, center: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """broker config → real Mosquitto as `mosquitto` → add, rotate, remove one kiosk."""
    _account()
    conf = broker_dir / "conf"
    tls_port = free_port()
    assert main(["broker", "config", "--out", str(conf), "--port", "0", "--tls-port",
                 str(tls_port), "--tls-host", "127.0.0.1", "--device", "B/k1"]) == 0  # fmt: skip
    first = _passwords(capsys.readouterr().out)
    assert set(first) == {"ingest", "B.k1"}
    # What the broker's account must read is its own; the CA's key stays root's.
    assert _mode(conf / "passwd") == (ACCOUNT, 0o600)
    assert _mode(conf / "acl") == (ACCOUNT, 0o640)
    assert _mode(conf / "tls" / "server.key") == (ACCOUNT, 0o600)
    assert _mode(conf / "tls" / "ca.key") == ("root", 0o600)
    assert _mode(conf / "data") == (ACCOUNT, 0o700)
    # Running it again provisions nobody anew and changes no byte.
    before = (conf / "passwd").read_bytes()
    assert main(["broker", "config", "--out", str(conf), "--port", "0", "--tls-port",
                 str(tls_port), "--tls-host", "127.0.0.1", "--device", "B/k1"]) == 0  # fmt: skip
    assert _passwords(capsys.readouterr().out) == {}
    assert (conf / "passwd").read_bytes() == before
    with psycopg.connect(center) as conn:
        devices.register_device(
            conn, facility_id="B", device_id="k1", device=DeviceIn(program_ids=["B-MEAL"])
        )

    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf / "mosquitto.conf")])
    try:
        wait_for_port(tls_port)
        broker_pid = proc.pid
        assert pwd.getpwuid(Path(f"/proc/{broker_pid}").stat().st_uid).pw_name == ACCOUNT
        ca = conf / "tls" / "ca.crt"
        k1 = Session(tls_port, ca, "B.k1", first["B.k1"])
        assert k1.accepted
        assert k1.publish_ok("welfare/v1/B/k1/health")

        passwd_k1 = [line for line in before.decode().splitlines()]
        acl_before = (conf / "acl").read_text()
        bundles = broker_dir / "bundles"
        assert main(["device", "add", "B/k2", "--broker", str(conf), "--bundle", str(bundles),
                     "--mqtt-host", "127.0.0.1", "--mqtt-port", str(tls_port),
                     "--program", "B-MEAL", "--label", "식당 2"]) == 0  # fmt: skip
        capsys.readouterr()
        after_add = (conf / "passwd").read_text().splitlines()
        assert after_add[: len(passwd_k1)] == passwd_k1  # the others' lines, byte for byte
        assert (conf / "acl").read_text().startswith(acl_before.rstrip("\n"))
        assert _mode(conf / "passwd") == (ACCOUNT, 0o600)

        bundle = bundles / "B-k2"
        assert _mode(bundle / "secrets") == ("root", 0o700)
        assert _mode(bundle / "secrets" / "welfare_mqtt__password") == ("root", 0o600)
        assert _mode(bundle / "secrets" / "welfare_credential_key") == ("root", 0o600)
        assert _mode(bundle / "edge.toml")[1] == 0o644
        settings = load_bundle(bundle / "edge.toml", bundle / "secrets", ca_file=bundle / "ca.crt")
        assert (settings.facility_id, settings.device_id) == ("B", "k2")
        assert settings.database == Path("/var/lib/welfare/edge.sqlite3")
        b_key = facility_key(MASTER.encode(), facility_id="B", version=1)
        assert settings.credential_key.get_secret_value() == b_key
        assert settings.mqtt is not None
        k2_password = settings.mqtt.password_value()
        assert k2_password is not None
        k2 = Session(tls_port, bundle / "ca.crt", "B.k2", k2_password)
        assert k2.accepted
        assert k2.publish_ok("welfare/v1/B/k2/attendance")
        k2.close()
        with psycopg.connect(center) as conn:
            added = devices.get_device(conn, facility_id="B", device_id="k2")
        assert added is not None
        assert (added.label, added.program_ids) == ("식당 2", ["B-MEAL"])

        assert main(["device", "rotate", "B/k2", "--broker", str(conf), "--bundle",
                     str(bundles), "--mqtt-host", "127.0.0.1", "--mqtt-port",
                     str(tls_port)]) == 0  # fmt: skip
        rotated = (conf / "passwd").read_text().splitlines()
        assert rotated[: len(passwd_k1)] == passwd_k1
        assert rotated[len(passwd_k1)] != after_add[len(passwd_k1)]
        assert not Session(tls_port, ca, "B.k2", k2_password).accepted  # the old password
        new = load_bundle(bundle / "edge.toml", bundle / "secrets", ca_file=bundle / "ca.crt")
        assert new.mqtt is not None
        new_password = new.mqtt.password_value()
        assert new_password is not None
        k2 = Session(tls_port, ca, "B.k2", new_password)
        assert k2.accepted
        k2.close()

        assert main(["device", "remove", "B/k2", "--broker", str(conf)]) == 0
        assert (conf / "passwd").read_text().splitlines() == passwd_k1
        assert (conf / "acl").read_text() == acl_before
        assert not Session(tls_port, ca, "B.k2", new_password).accepted
        with psycopg.connect(center) as conn:
            assert devices.get_device(conn, facility_id="B", device_id="k2") is None
        with pytest.raises(SystemExit, match="unknown device B/k2"):
            main(["device", "remove", "B/k2", "--broker", str(conf)])

        # Three reloads later k1's session never dropped and still works.
        assert k1.disconnects == 0
        assert k1.publish_ok("welfare/v1/B/k1/health")
        k1.close()
    finally:
        proc.terminate()
        proc.wait(10)
    wait_until(lambda: proc.poll() is not None, what="the broker to stop")


def test_device_commands_refuse_clearly(
    broker_dir: Path, center: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown program, a device twice, an unknown device: a reason, and nothing changed."""
    _account()
    conf = broker_dir / "conf"
    assert main(["broker", "config", "--out", str(conf), "--port", "0", "--tls-port",
                 str(free_port()), "--tls-host", "127.0.0.1"]) == 0  # fmt: skip
    passwd = (conf / "passwd").read_bytes()
    common = ["--broker", str(conf), "--bundle", str(broker_dir / "b"), "--mqtt-host", "h"]
    with pytest.raises(SystemExit, match="unknown program 'B-NOPE'"):
        main(["device", "add", "B/k9", *common, "--program", "B-NOPE"])
    assert (conf / "passwd").read_bytes() == passwd
    with pytest.raises(SystemExit, match="invalid device id"):
        main(["device", "add", "B/a b", *common])
    with pytest.raises(SystemExit, match="unknown device B/k9"):
        main(["device", "rotate", "B/k9", *common])
    assert main(["device", "add", "B/k9", *common, "--program", "B-MEAL"]) == 0
    with pytest.raises(SystemExit, match="exists: use `welfare device rotate`"):
        main(["device", "add", "B/k9", *common])
    capsys.readouterr()
