"""The project's Mosquitto configuration, rendered from the template beside this module."""

from __future__ import annotations

import os
import pwd
from importlib import resources
from pathlib import Path

from broker.tls import TlsFiles


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
) -> str:
    """The project's mosquitto.conf with paths, listeners and account filled in.

    `auth_dir` holds the password and ACL files (default `data_dir`); `data_dir` the
    persistence file, the log and the pid file, so it must be writable by `user`.
    """
    template = resources.files("broker").joinpath("mosquitto/mosquitto.conf").read_text()
    auth = auth_dir or data_dir
    return template.format(
        user=user or pwd.getpwuid(os.geteuid()).pw_name,
        data_dir=data_dir,
        password_file=auth / "passwd",
        acl_file=auth / "acl",
        listeners=listener_lines(
            port=port, bind=bind, tls=tls, tls_port=tls_port, tls_bind=tls_bind
        ),
    )
