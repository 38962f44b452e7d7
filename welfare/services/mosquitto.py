"""A Mosquitto process of our own, started with the project's broker configuration."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from broker.auth import (
    INGEST_USER,
    DeviceIdentity,
    acl_text,
    bridge_username,
    new_password,
    password_line,
)
from broker.config import MqttSettings
from broker.mosquitto import render_config
from broker.tls import TlsFiles, ensure_tls
from welfare.services.ports import free_port, wait_for_port


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError("mosquitto is not installed: apt-get install -y mosquitto")
    return found


@dataclass
class MosquittoServer:
    """Start, kill and restart a broker in `data_dir`; credentials are generated per run.

    It listens on two loopback ports: `port` (plain MQTT) and `tls_port` (TLS with a CA of
    its own, `tls.ca_file`); both refuse anonymous clients. `mqtt_settings()` gives a
    client's settings for the TLS listener.
    """

    data_dir: Path
    devices: list[DeviceIdentity] = field(default_factory=list)
    port: int = 0
    bind: str = "127.0.0.1"
    passwords: dict[str, str] = field(default_factory=dict)
    tls_port: int = 0
    tls: TlsFiles | None = None
    # A city broker: the facilities whose center brokers bridge in (an account each).
    bridges: list[str] = field(default_factory=list)
    # A center broker: its bridge section to the city (broker.mosquitto.bridge_lines).
    bridge: str | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        """Pick ports and write TLS files, config, passwords and ACL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        self.tls = ensure_tls(self.data_dir / "tls", hosts=["localhost", self.bind])
        self.write_auth()
        (self.data_dir / "mosquitto.conf").write_text(
            render_config(
                port=self.port,
                bind=self.bind,
                data_dir=self.data_dir,
                tls=self.tls,
                tls_port=self.tls_port,
                bridge=self.bridge,
            )
        )

    def mqtt_settings(self, username: str = INGEST_USER, **kw: object) -> MqttSettings:
        """A client's settings for the TLS listener, logged in as `username`."""
        assert self.tls is not None
        return MqttSettings(
            host=self.bind,
            port=self.tls_port,
            username=username,
            password=self.passwords[username],
            ca_file=self.tls.ca_file,
            **kw,
        )

    def write_auth(self) -> None:
        """(Re)write the password and ACL files for the ingest and every device."""
        users = [
            INGEST_USER,
            *(d.username for d in self.devices),
            *(bridge_username(f) for f in self.bridges),
        ]
        for user in users:
            self.passwords.setdefault(user, new_password())
        passwd = self.data_dir / "passwd"
        passwd.write_text("\n".join(password_line(u, self.passwords[u]) for u in users) + "\n")
        (self.data_dir / "acl").write_text(acl_text(self.devices, bridges=self.bridges))
        os.chmod(passwd, 0o600)
        os.chmod(self.data_dir / "acl", 0o600)

    def add_device(self, device: DeviceIdentity) -> str:
        """Give a new device credentials (reloads a running broker); returns its password."""
        self.devices.append(device)
        self.write_auth()
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGHUP)
        return self.passwords[device.username]

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        if self.running:
            return
        log = (self.data_dir / "stdout.log").open("ab")
        self._proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.data_dir / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
            wait_for_port(self.tls_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(
                f"mosquitto did not start; see {self.data_dir}/mosquitto.log"
            ) from None

    def stop(self) -> None:
        """Stop gracefully (SIGTERM); persistence is saved."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker: whatever it had not persisted is lost."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def restart(self, *, hard: bool = False) -> None:
        """Stop (or kill) and start again on the same port."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def __enter__(self) -> Self:
        """Start on entry."""
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop on exit; nothing is left running."""
        self.stop()
