"""The project's Mosquitto configuration, rendered from the template beside this module."""

from __future__ import annotations

import os
import pwd
from importlib import resources
from pathlib import Path


def render_config(*, port: int, bind: str, data_dir: Path, user: str | None = None) -> str:
    """The project's mosquitto.conf with paths, port and account filled in."""
    template = resources.files("broker").joinpath("mosquitto/mosquitto.conf").read_text()
    return template.format(
        port=port,
        bind=bind,
        user=user or pwd.getpwuid(os.geteuid()).pw_name,
        data_dir=data_dir,
        password_file=data_dir / "passwd",
        acl_file=data_dir / "acl",
    )
