"""`welfare device add / remove / rotate FACILITY/DEVICE`: provision one kiosk at the center.

`add` registers the device and the programs it serves (the center's database), gives it a
broker account — its password line and ACL block, every other line left byte-for-byte as it was
— reloads Mosquitto (SIGHUP: sessions stay up), and writes the device's bundle:

    BUNDLE/<facility>-<device>/
        edge.toml                        settings (0644), validated by the kiosk's EdgeSettings
        ca.crt                           the broker's CA (0644)
        secrets/                         0700
            welfare_credential_key       the facility's card-hash key (0600)
            welfare_mqtt__password       the device's broker password (0600)

copied to /etc/welfare/ on the kiosk (docs/provisioning.md). `rotate` gives the device a new
password (and its facility's current key) in a new bundle; `remove` takes its account and
registration away. Runs on the center, as root, with DATABASE_URL and WELFARE_CREDENTIAL_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KIOSK_DIR = Path("/etc/welfare")
STATE_DIR = Path("/var/lib/welfare")
RUNTIME_DIR = Path("/run/welfare")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `device` command group."""
    device = sub.add_parser("device", help="provision kiosks: broker account, registry, bundle")
    cmds = device.add_subparsers(dest="device_command", required=True)
    add = cmds.add_parser("add", help="a new kiosk: account, registration and bundle")
    rotate = cmds.add_parser("rotate", help="a new password (and current key) for a kiosk")
    remove = cmds.add_parser("remove", help="take a kiosk's account and registration away")
    for parser in (add, rotate, remove):
        parser.add_argument("device", metavar="FACILITY/DEVICE")
        parser.add_argument(
            "--broker", type=Path, required=True, help="the broker's directory (mosquitto.conf)"
        )
    for parser in (add, rotate):
        parser.add_argument("--bundle", type=Path, required=True, help="where bundles go")
        parser.add_argument(
            "--mqtt-host", required=True, help="the broker's name as kiosks reach it (in its cert)"
        )
        parser.add_argument("--mqtt-port", type=int, default=8883)
    add.add_argument("--program", action="append", default=[], help="a program it serves")
    add.add_argument("--label", default="", help="where it stands, for operators")
    add.set_defaults(handler=_add)
    rotate.set_defaults(handler=_rotate)
    remove.set_defaults(handler=_remove)


def toml_text(values: Mapping[str, Any]) -> str:
    """TOML of flat values and one level of tables (strings quoted as JSON, valid TOML)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines += ["", f"[{name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    """One TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _secret(path: Path, value: str) -> None:
    """A secret file, created readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    os.chmod(path, 0o600)


def write_bundle(
    out: Path,
    *,
    facility_id: str,
    device_id: str,
    password: str,
    credential_key: str,
    mqtt_host: str,
    mqtt_port: int,
    ca_file: Path,
) -> Path:
    """Write and validate a device's bundle; returns its directory."""
    from edge_agent.config import load_bundle

    target = out / f"{facility_id}-{device_id}"
    secrets = target / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)  # it holds secrets; edge.toml and ca.crt alone are public
    os.chmod(secrets, 0o700)
    settings = {
        "facility_id": facility_id,
        "device_id": device_id,
        "database": STATE_DIR / "edge.sqlite3",
        "link_socket": RUNTIME_DIR / "edge-link.sock",
        "mqtt": {
            "host": mqtt_host,
            "port": mqtt_port,
            "username": f"{facility_id}.{device_id}",
            "ca_file": KIOSK_DIR / "ca.crt",
        },
    }
    config = target / "edge.toml"
    header = (
        f"# Smart Welfare kiosk {facility_id}/{device_id}: written by `welfare device`.\n"
        f"# Install as {KIOSK_DIR}/edge.toml; secrets/ goes to {KIOSK_DIR}/secrets/ (0700).\n"
    )
    config.write_text(header + toml_text(settings))
    os.chmod(config, 0o644)
    shutil.copyfile(ca_file, target / "ca.crt")
    os.chmod(target / "ca.crt", 0o644)
    _secret(secrets / "welfare_credential_key", credential_key)
    _secret(secrets / "welfare_mqtt__password", password)
    # Exactly what the kiosk will load, validated by its own settings class.
    load_bundle(config, secrets, ca_file=target / "ca.crt")
    return target


def _context(args: argparse.Namespace) -> tuple[Any, bytes, Any]:
    """The device's identity, the master key and the center's settings (or exit with why)."""
    from broker.auth import DeviceIdentity
    from broker.config import key_bytes
    from ingest_api.core.config import Settings

    try:
        device = DeviceIdentity.parse(args.device)
        settings = Settings()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if settings.credential_key is None:
        raise SystemExit("error: set WELFARE_CREDENTIAL_KEY (the center's master key)")
    return device, key_bytes(settings.credential_key), settings


def _broker(args: argparse.Namespace) -> Any:
    """The broker directory (or exit with why)."""
    from broker.brokerdir import BrokerDir, BrokerDirError

    try:
        return BrokerDir.open(args.broker)
    except BrokerDirError as exc:
        raise SystemExit(f"error: {exc}") from None


def _bundle_for(
    args: argparse.Namespace, conn: Any, *, device: Any, master: bytes, password: str
) -> Path:
    """Write the bundle with the facility's current key."""
    from broker.brokerdir import BrokerDir
    from broker.keys import facility_key
    from ingest_api.registry import keys

    broker: BrokerDir = _broker(args)
    ca_file = broker.conf.parent / "tls" / "ca.crt"
    if not ca_file.exists():
        raise SystemExit(f"error: no {ca_file}: the broker has no TLS (`welfare broker config`)")
    version = keys.ensure_versions(conn, facility_id=device.facility_id)[0]
    return write_bundle(
        args.bundle,
        facility_id=device.facility_id,
        device_id=device.device_id,
        password=password,
        credential_key=facility_key(master, facility_id=device.facility_id, version=version),
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        ca_file=ca_file,
    )


def _report(broker: Any, bundle: Path | None) -> None:
    """Say what happened to the broker and where the bundle is."""
    pid = broker.reload()
    if pid is None:
        print("broker not running: it reads the new files when it starts", file=sys.stderr)
    else:
        print(f"broker reloaded (SIGHUP to pid {pid}); sessions stay up", file=sys.stderr)
    if bundle is not None:
        print(f"bundle: {bundle} (copy it to {KIOSK_DIR} on the kiosk: docs/provisioning.md)")


def _add(args: argparse.Namespace) -> int:
    """`welfare device add`: registry first (refusals change nothing), then broker, bundle."""
    import psycopg

    from broker.brokerdir import BrokerDirError
    from ingest_api.registry import devices
    from ingest_api.registry.models import DeviceIn

    device, master, settings = _context(args)
    broker = _broker(args)
    with psycopg.connect(settings.database_url) as conn:
        if devices.get_device(conn, facility_id=device.facility_id, device_id=device.device_id):
            raise SystemExit(f"error: {args.device} exists: use `welfare device rotate`")
        try:
            devices.register_device(
                conn,
                facility_id=device.facility_id,
                device_id=device.device_id,
                device=DeviceIn(label=args.label, program_ids=args.program),
            )
            password = broker.add_device(device)
        except (devices.DeviceError, BrokerDirError, ValueError) as exc:
            conn.rollback()
            raise SystemExit(f"error: {exc}") from None
        bundle = _bundle_for(args, conn, device=device, master=master, password=password)
    _report(broker, bundle)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    """`welfare device rotate`: a new password and a new bundle for one kiosk."""
    import psycopg

    from broker.brokerdir import BrokerDirError

    device, master, settings = _context(args)
    broker = _broker(args)
    try:
        password = broker.rotate_device(device)
    except BrokerDirError as exc:
        raise SystemExit(f"error: {exc}") from None
    with psycopg.connect(settings.database_url) as conn:
        bundle = _bundle_for(args, conn, device=device, master=master, password=password)
    _report(broker, bundle)
    return 0


def _remove(args: argparse.Namespace) -> int:
    """`welfare device remove`: its broker lines and its registration (its events stay)."""
    import psycopg

    from broker.brokerdir import BrokerDirError
    from ingest_api.registry import devices

    device, _master, settings = _context(args)
    broker = _broker(args)
    try:
        broker.remove_device(device)
    except BrokerDirError as exc:
        raise SystemExit(f"error: {exc}") from None
    with psycopg.connect(settings.database_url) as conn:
        devices.remove_device(conn, facility_id=device.facility_id, device_id=device.device_id)
    _report(broker, None)
    print(f"removed {args.device}: its bundle no longer logs in; its events stay")
    return 0
