"""A real browser for page tests: Playwright for Python driving Debian's Chromium.

No browser is downloaded (`playwright install` is never run): Playwright launches
/usr/bin/chromium with the flags this machine needs (no sandbox as root, no network services).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, sync_playwright

from welfare.services.chromium import HEADLESS_ARGS, find_chromium
from welfare.services.ports import free_port


def chromium_path() -> str:
    """The Chromium binary (Debian's package)."""
    try:
        return find_chromium()
    except FileNotFoundError as exc:
        pytest.fail(f"{exc} (make test does)")


@contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium under Playwright, closed afterwards."""
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium_path(), headless=True, args=list(HEADLESS_ARGS)
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a free local port (uvicorn in a thread); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
