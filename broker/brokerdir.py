"""A broker's configuration directory: its files, their owner and mode, and reloading it.

Mosquitto started as root reads its configuration, then drops to its `user` before it opens the
password file, the ACL file, the TLS key and its log and persistence files — at start and at
every reload (SIGHUP). So those are owned by that account (`mosquitto` on Debian), readable by
it alone where they are secret; the CA's own key stays root's and is never read by the broker.
Every write is atomic (a temporary file renamed over the old one), so the broker never reads a
half-written file, and `welfare device …` changes only the lines of the device it names.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from broker.auth import (
    BRIDGE_PREFIX,
    INGEST_USER,
    DeviceIdentity,
    acl_text,
    bridge_username,
    new_password,
    password_users,
    remove_device_acl,
    remove_password,
    set_device_acl,
    set_password,
)

CONF = "mosquitto.conf"
_DIRECTIVE = re.compile(
    r"^\s*(user|password_file|acl_file|pid_file|persistence_location)\s+(.+?)\s*$"
)


class BrokerDirError(RuntimeError):
    """The broker directory cannot be used as asked (missing file, unknown device, …)."""


@dataclass(frozen=True, slots=True)
class Account:
    """The account the broker runs as (uid/gid), or None fields when it does not exist here."""

    name: str
    uid: int | None
    gid: int | None

    @classmethod
    def named(cls, name: str) -> Account:
        """Look the account up."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return cls(name, None, None)
        return cls(name, entry.pw_uid, entry.pw_gid)


def write_file(path: Path, text: str, *, mode: int, owner: Account | None) -> None:
    """Write atomically with `mode`, owned by `owner` when we may chown (we are root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        if owner is not None and owner.uid is not None and os.geteuid() == 0:
            os.chown(tmp, owner.uid, owner.gid if owner.gid is not None else -1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def own(path: Path, owner: Account, *, mode: int) -> None:
    """Give an existing file or directory to the broker's account with `mode`."""
    os.chmod(path, mode)
    if owner.uid is not None and os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid if owner.gid is not None else -1)


@dataclass(frozen=True, slots=True)
class BrokerDir:
    """The files of one broker, as named in its mosquitto.conf."""

    conf: Path
    account: Account
    password_file: Path
    acl_file: Path
    pid_file: Path | None

    @classmethod
    def open(cls, directory: Path) -> BrokerDir:
        """Read `directory/mosquitto.conf` for the files it names."""
        conf = directory / CONF
        if not conf.is_file():
            raise BrokerDirError(f"{conf} not found: run `welfare broker config --out {directory}`")
        found: dict[str, str] = {}
        for line in conf.read_text().splitlines():
            match = _DIRECTIVE.match(line)
            if match:
                found.setdefault(match[1], match[2])
        for needed in ("password_file", "acl_file"):
            if needed not in found:
                raise BrokerDirError(f"{conf} names no {needed}")
        return cls(
            conf=conf,
            account=Account.named(found.get("user", "mosquitto")),
            password_file=Path(found["password_file"]),
            acl_file=Path(found["acl_file"]),
            pid_file=Path(found["pid_file"]) if "pid_file" in found else None,
        )

    # -- reading ------------------------------------------------------------------------

    def users(self) -> list[str]:
        """Usernames in the password file."""
        if not self.password_file.exists():
            return []
        return password_users(self.password_file.read_text())

    def devices(self) -> list[DeviceIdentity]:
        """Device accounts (every user but the ingest and the bridges), in file order."""
        return [
            DeviceIdentity.parse(u)
            for u in self.users()
            if u != INGEST_USER and not u.startswith(BRIDGE_PREFIX)
        ]

    def bridges(self) -> list[str]:
        """Facilities whose center broker has a bridge account here, in file order."""
        return [u.removeprefix(BRIDGE_PREFIX) for u in self.users() if u.startswith(BRIDGE_PREFIX)]

    # -- writing ------------------------------------------------------------------------

    def _write_passwd(self, text: str) -> None:
        """The password file: the broker's account only (Mosquitto warns about anything wider)."""
        write_file(self.password_file, text, mode=0o600, owner=self.account)

    def _write_acl(self, text: str) -> None:
        """The ACL file: read by the broker's account; it holds no secret."""
        write_file(self.acl_file, text, mode=0o640, owner=self.account)

    def ensure_users(
        self, devices: list[DeviceIdentity], *, bridges: list[str] | None = None
    ) -> dict[str, str]:
        """Give the ingest, `devices` and center `bridges` (facility ids) accounts when missing;
        returns only the new passwords.

        Existing accounts keep their passwords: re-running `welfare broker config` with one
        more device provisions that one device, nobody else.
        """
        text = self.password_file.read_text() if self.password_file.exists() else ""
        known = set(password_users(text))
        created: dict[str, str] = {}
        bridge_users = [bridge_username(f) for f in bridges or []]
        for user in [INGEST_USER, *(d.username for d in devices), *bridge_users]:
            if user not in known:
                created[user] = new_password()
                text = set_password(text, user, created[user])
                known.add(user)
        if created or not self.password_file.exists():
            self._write_passwd(text)
        acl = acl_text(self.devices(), bridges=self.bridges())
        if not self.acl_file.exists() or self.acl_file.read_text() != acl:
            self._write_acl(acl)
        return created

    def add_device(self, device: DeviceIdentity) -> str:
        """New credentials and ACL lines for one device; refuses a device that exists."""
        if device.username in self.users():
            raise BrokerDirError(
                f"{device.facility_id}/{device.device_id} exists: use `welfare device rotate`"
            )
        return self._set_device(device)

    def rotate_device(self, device: DeviceIdentity) -> str:
        """A new password for an existing device (its ACL lines are rewritten unchanged)."""
        if device.username not in self.users():
            raise BrokerDirError(f"unknown device {device.facility_id}/{device.device_id}")
        return self._set_device(device)

    def _set_device(self, device: DeviceIdentity) -> str:
        """Set one device's password line and ACL block; every other line stays as it was."""
        password = new_password()
        text = self.password_file.read_text() if self.password_file.exists() else ""
        self._write_passwd(set_password(text, device.username, password))
        acl = self.acl_file.read_text() if self.acl_file.exists() else acl_text([])
        self._write_acl(set_device_acl(acl, device))
        return password

    def remove_device(self, device: DeviceIdentity) -> None:
        """Remove one device's password line and ACL block."""
        if device.username not in self.users():
            raise BrokerDirError(f"unknown device {device.facility_id}/{device.device_id}")
        self._write_passwd(remove_password(self.password_file.read_text(), device.username))
        if self.acl_file.exists():
            self._write_acl(remove_device_acl(self.acl_file.read_text(), device))

    def reload(self) -> int | None:
        """SIGHUP the running broker (it re-reads passwords and ACLs, sessions stay up).

        Returns the broker's pid, or None when it is not running (the next start reads the
        files anyway).
        """
        if self.pid_file is None or not self.pid_file.exists():
            return None
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (ValueError, ProcessLookupError):
            return None
        return pid
