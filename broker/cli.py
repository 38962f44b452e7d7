"""`welfare broker …`: broker configuration and example payloads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from broker.auth import INGEST_USER, DeviceIdentity, acl_text, new_password, password_line
from broker.examples import examples
from broker.mosquitto import render_config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `broker` command group."""
    broker = sub.add_parser("broker", help="Mosquitto configuration and the wire contract")
    cmds = broker.add_subparsers(dest="broker_command", required=True)
    config = cmds.add_parser(
        "config", help="write mosquitto.conf, passwd and acl for a set of devices"
    )
    config.add_argument("--out", type=Path, required=True, help="directory to write into")
    config.add_argument(
        "--device", action="append", default=[], metavar="FACILITY/DEVICE", help="repeatable"
    )
    config.add_argument("--port", type=int, default=1883)
    config.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - a center's broker serves its LAN
    config.add_argument("--user", default="mosquitto", help="account the broker runs as")
    config.set_defaults(handler=_config)
    example = cmds.add_parser("example", help="print an example payload of every message")
    example.set_defaults(handler=_example)


def _config(args: argparse.Namespace) -> int:
    """Write a broker configuration; passwords are printed once and never stored in clear."""
    devices = []
    for spec in args.device:
        facility, _, device = spec.partition("/")
        devices.append(DeviceIdentity(facility, device))
    args.out.mkdir(parents=True, exist_ok=True)
    passwords = {u: new_password() for u in [INGEST_USER, *(d.username for d in devices)]}
    passwd = args.out / "passwd"
    passwd.write_text("\n".join(password_line(u, p) for u, p in passwords.items()) + "\n")
    os.chmod(passwd, 0o600)
    (args.out / "acl").write_text(acl_text(devices))
    (args.out / "mosquitto.conf").write_text(
        render_config(port=args.port, bind=args.bind, data_dir=args.out, user=args.user)
    )
    for user, password in passwords.items():
        print(f"{user}\t{password}")
    return 0


def _example(_args: argparse.Namespace) -> int:
    """Print one example per message type."""
    for name, (topic_name, payload) in examples().items():
        print(f"# {name}: {topic_name}\n{payload}\n")
    return 0
