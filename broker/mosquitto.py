"""The project's Mosquitto configuration, rendered from the template beside this module."""

from __future__ import annotations

import os
import pwd
from importlib import resources
from pathlib import Path

from broker.auth import bridge_username
from broker.const import QOS_AT_LEAST_ONCE, TOPIC_ROOT
from broker.tls import TlsFiles
from broker.topics import DOWNSTREAM, UPSTREAM, validate_id


def listener_lines(
    *,
    port: int | None,
    bind: str,
    tls: TlsFiles | None = None,
    tls_port: int | None = None,
    tls_bind: str | None = None,
) -> str:
    """The listener section: plain (e.g. loopback for the center's own services) and/or TLS."""
    lines: list[str] = []
    if port is not None:
        lines += [f"listener {port} {bind}", ""]
    if tls is not None:
        if tls_port is None:
            raise ValueError("a TLS listener needs its port")
        lines += [
            f"listener {tls_port} {tls_bind or bind}",
            f"cafile {tls.ca_file}",
            f"certfile {tls.cert_file}",
            f"keyfile {tls.key_file}",
            "tls_version tlsv1.2",
            "",
        ]
    if not lines:
        raise ValueError("a broker needs at least one listener")
    return "\n".join(lines)


def bridge_lines(
    *,
    facility_id: str,
    host: str,
    port: int,
    password: str,
    ca_file: Path | None = None,
    restart_s: tuple[int, int] = (2, 30),
) -> str:
    """A center broker's bridge to the city's broker: Mosquitto's own federation.

    Out: the facility's devices' upstream channels; in: their downstream ones (acks, rosters,
    configs); the peer channel stays on the center's LAN. QoS 1 both ways and a persistent
    session (`cleansession false`, a fixed client id on each side), so what the kiosks sent
    while the city was unreachable is queued here and forwarded when the link comes back;
    the ingest's end-to-end ack still decides when an event may leave a kiosk.
    """
    validate_id(facility_id, what="facility")
    user = bridge_username(facility_id)
    lines = [
        f"connection city-{facility_id}",
        f"address {host}:{port}",
        "bridge_protocol_version mqttv50",
        "cleansession false",
        f"remote_clientid {user}",
        f"local_clientid {user}-local",
        f"remote_username {user}",
        f"remote_password {password}",
        # Mosquitto to Mosquitto: the city broker knows it is a bridge and avoids loops.
        "try_private true",
        "start_type automatic",
        f"restart_timeout {restart_s[0]} {restart_s[1]}",
        "keepalive_interval 20",
        # The link's state for the center's staff, on this broker only ($SYS/broker/connection).
        "notifications true",
        "notifications_local_only true",
    ]
    if ca_file is not None:
        lines += [f"bridge_cafile {ca_file}", "bridge_tls_version tlsv1.2"]
    for channel in UPSTREAM:
        lines.append(f"topic {TOPIC_ROOT}/{facility_id}/+/{channel.value} out {QOS_AT_LEAST_ONCE}")
    for channel in DOWNSTREAM:
        lines.append(f"topic {TOPIC_ROOT}/{facility_id}/+/{channel.value} in {QOS_AT_LEAST_ONCE}")
    return "\n".join(
        ["", "# The bridge to the city's broker (welfare broker config --bridge-to).", *lines, ""]
    )


def render_config(
    *,
    port: int | None,
    bind: str,
    data_dir: Path,
    user: str | None = None,
    auth_dir: Path | None = None,
    tls: TlsFiles | None = None,
    tls_port: int | None = None,
    tls_bind: str | None = None,
    bridge: str | None = None,
) -> str:
    """The project's mosquitto.conf with paths, listeners and account filled in (and, at a
    center broker, its `bridge_lines` to the city).

    `auth_dir` holds the password and ACL files (default `data_dir`); `data_dir` the
    persistence file, the log and the pid file, so it must be writable by `user`.
    """
    template = resources.files("broker").joinpath("mosquitto/mosquitto.conf").read_text()
    auth = auth_dir or data_dir
    text = template.format(
        user=user or pwd.getpwuid(os.geteuid()).pw_name,
        data_dir=data_dir,
        password_file=auth / "passwd",
        acl_file=auth / "acl",
        listeners=listener_lines(
            port=port, bind=bind, tls=tls, tls_port=tls_port, tls_bind=tls_bind
        ),
    )
    return text + bridge if bridge else text
