"""`welfare broker …`: broker configuration, its TLS certificates and example payloads."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from broker.auth import DeviceIdentity
from broker.brokerdir import Account, BrokerDir, own, write_file
from broker.examples import examples
from broker.mosquitto import bridge_lines, render_config
from broker.tls import TlsFiles, ensure_tls


def _default_hosts() -> list[str]:
    """Names a kiosk may use for this machine: its FQDN, localhost and the loopback address."""
    return list(dict.fromkeys([socket.getfqdn(), "localhost", "127.0.0.1"]))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `broker` command group."""
    broker = sub.add_parser("broker", help="Mosquitto configuration and the wire contract")
    cmds = broker.add_subparsers(dest="broker_command", required=True)
    config = cmds.add_parser(
        "config",
        help="write mosquitto.conf, passwd, acl and TLS files for a set of devices",
        description="Idempotent: accounts that exist keep their passwords; only new ones are "
        "generated and printed (once). Files get the owner and mode the broker's account needs.",
    )
    config.add_argument("--out", type=Path, required=True, help="configuration directory")
    config.add_argument(
        "--data-dir",
        type=Path,
        help="persistence, log and pid file, owned by --user (default OUT/data)",
    )
    config.add_argument(
        "--device", action="append", default=[], metavar="FACILITY/DEVICE", help="repeatable"
    )
    config.add_argument(
        "--port", type=int, default=1883, help="plain listener (0: none), for local services"
    )
    config.add_argument(
        "--bind",
        default=None,
        help="address of the plain listener (default 127.0.0.1 with TLS, 0.0.0.0 without)",
    )
    config.add_argument("--tls-port", type=int, default=8883, help="the kiosks' TLS listener")
    config.add_argument("--tls-bind", default="0.0.0.0")  # noqa: S104 - kiosks on the LAN
    config.add_argument(
        "--tls-host",
        action="append",
        default=[],
        metavar="NAME",
        help="name or address kiosks connect to (repeatable; default: this host's FQDN, "
        "localhost, 127.0.0.1)",
    )
    config.add_argument("--no-tls", action="store_true", help="plain MQTT only (not advised)")
    config.add_argument("--user", default="mosquitto", help="account the broker runs as")
    # The city's broker: an account for each center broker that bridges in.
    config.add_argument(
        "--bridge",
        action="append",
        default=[],
        metavar="FACILITY",
        help="city broker: give FACILITY's center broker a bridge account (repeatable)",
    )
    # A center broker (docs/kiosk.md, "The center broker"): its kiosks, and its bridge out.
    config.add_argument(
        "--bridge-to",
        metavar="HOST:PORT",
        help="center broker: bridge to the city's broker (TLS port); needs --facility",
    )
    config.add_argument("--facility", help="center broker: the facility it serves")
    config.add_argument(
        "--bridge-password-file",
        type=Path,
        help="file holding the bridge account's password (printed by the city's --bridge)",
    )
    config.add_argument("--bridge-ca", type=Path, help="the city broker's CA certificate")
    config.set_defaults(handler=_config)
    tls = cmds.add_parser("tls", help="make the broker's CA and server certificate")
    tls.add_argument("--out", type=Path, required=True, help="directory (e.g. OUT/tls)")
    tls.add_argument("--host", action="append", default=[], metavar="NAME", help="repeatable")
    tls.add_argument("--user", default="mosquitto", help="account that reads server.key")
    tls.set_defaults(handler=_tls)
    example = cmds.add_parser("example", help="print an example payload of every message")
    example.set_defaults(handler=_example)


def make_tls(directory: Path, *, hosts: list[str], account: Account) -> TlsFiles:
    """CA and server certificate in `directory`: server.key for the broker, ca.key root's."""
    files = ensure_tls(directory, hosts=hosts)
    own(directory, account, mode=0o755)
    own(files.key_file, account, mode=0o600)
    own(directory / "ca.key", Account("root", 0, 0), mode=0o600)
    return files


def _tls(args: argparse.Namespace) -> int:
    """`welfare broker tls`: print where the files are and what each is for."""
    files = make_tls(
        args.out, hosts=args.host or _default_hosts(), account=Account.named(args.user)
    )
    print(f"CA certificate (copy to every kiosk): {files.ca_file}")
    print(f"server certificate and key (the broker): {files.cert_file}, {files.key_file}")
    print(f"CA key (keep offline; only for new server certificates): {args.out / 'ca.key'}")
    return 0


def _config(args: argparse.Namespace) -> int:
    """Write a broker configuration; new passwords are printed once and never stored in clear."""
    try:
        devices = [DeviceIdentity.parse(spec) for spec in args.device]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    account = Account.named(args.user)
    if account.uid is None:
        print(f"error: no account {args.user!r} on this machine (--user)", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    data_dir: Path = (args.data_dir or out / "data").resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    # The broker writes its persistence file, log and pid file here as its own account.
    own(data_dir, account, mode=0o700)
    tls = None
    if not args.no_tls:
        tls = make_tls(out / "tls", hosts=args.tls_host or _default_hosts(), account=account)
    bind = args.bind or ("0.0.0.0" if args.no_tls else "127.0.0.1")  # noqa: S104
    try:
        bridge = _bridge(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render_config(
        port=args.port or None,
        bind=bind,
        data_dir=data_dir,
        auth_dir=out,
        user=args.user,
        tls=tls,
        tls_port=args.tls_port,
        tls_bind=args.tls_bind,
        bridge=bridge,
    )
    # Read by root before the broker drops to its account: root's; secret with a bridge in it.
    write_file(out / "mosquitto.conf", text, mode=0o600 if bridge else 0o644, owner=None)
    created = BrokerDir.open(out).ensure_users(devices, bridges=args.bridge)
    for user, password in created.items():
        print(f"{user}\t{password}")
    if not created:
        print("no new accounts: existing passwords kept", file=sys.stderr)
    return 0


def _bridge(args: argparse.Namespace) -> str | None:
    """The bridge section of a center broker, or None; ValueError names what is missing."""
    if args.bridge_to is None:
        return None
    host, sep, port = str(args.bridge_to).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--bridge-to must be HOST:PORT, not {args.bridge_to!r}")
    if not args.facility or args.bridge_password_file is None:
        raise ValueError("--bridge-to needs --facility and --bridge-password-file")
    password = args.bridge_password_file.read_text().strip()
    if not password:
        raise ValueError(f"{args.bridge_password_file} is empty")
    return bridge_lines(
        facility_id=args.facility,
        host=host,
        port=int(port),
        password=password,
        ca_file=args.bridge_ca,
    )


def _example(_args: argparse.Namespace) -> int:
    """Print one example per message type."""
    for name, (topic_name, payload) in examples().items():
        print(f"# {name}: {topic_name}\n{payload}\n")
    return 0
