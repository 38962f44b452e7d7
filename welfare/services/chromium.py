"""Debian's Chromium, headless, the way this machine allows it (tests, screenshots)."""

from __future__ import annotations

import shutil
from typing import Final

# No sandbox (we run as root here), no GPU, and nothing that would reach the network.
HEADLESS_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str:
    """The Chromium binary (Debian's package `chromium`, installed by `make test`)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise FileNotFoundError("chromium is not installed: apt-get install -y chromium")
    return found
