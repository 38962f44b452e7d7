"""`welfare fleet …`: the operator dashboard on sample data, and its screenshots.

`welfare fleet screenshots --out docs/screens` starts a throw-away PostgreSQL, records a day of
the sample city's eight kiosks (welfare/sample/fleet.py), serves the central service and
photographs the fleet page and one kiosk's page in headless Chromium (Debian's, through
Playwright; no browser is downloaded), signed in as a sample operator. `--serve` keeps it up
to look at and prints the operator's one-run password.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from welfare.services.signals import sigterm_as_interrupt

_LOG = logging.getLogger(__name__)
SHOTS = {
    "fleet_1_overview.png": ("/fleet", 1280),
    "fleet_2_device.png": ("/fleet/devices/D/meal-1", 1280),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `fleet` command group."""
    fleet = sub.add_parser("fleet", help="the operator dashboard on sample data")
    cmds = fleet.add_subparsers(dest="fleet_command", required=True)
    shots = cmds.add_parser("screenshots", help="photograph the dashboard (headless Chromium)")
    shots.add_argument("--out", type=Path, default=Path("docs/screens"))
    shots.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    shots.set_defaults(handler=_screenshots)


OPERATOR = "fleet-operator"


def operator_session(url: str, *, username: str = OPERATOR) -> tuple[str, str]:
    """An operator account (made if missing, with a random password) and a fresh session.

    Returns (session cookie value, the account's password or "" when it existed already).
    """
    import secrets

    import psycopg

    from ingest_api.auth.accounts import AccountError, add_user
    from ingest_api.core.security import Role
    from ingest_api.core.sessions import create_session

    password = ""
    with psycopg.connect(url) as conn:
        try:
            password = add_user(
                conn,
                username=username,
                role=Role.OPERATOR,
                actor="welfare fleet",
                display_name="운영자",
                password=secrets.token_urlsafe(12),
            ).password
        except AccountError:
            conn.rollback()  # the account exists already: a new session is enough
        cookie, _csrf = create_session(
            conn,
            username=username,
            second_factor_pending=False,
            now=datetime.now(UTC),
            max_hours=12,
        )
    return cookie, password


@contextlib.contextmanager
def sample_service(workdir: Path) -> Iterator[tuple[str, str]]:
    """The central service on a free port over a throw-away database holding the sample day.

    Yields (the service's base URL, the database URL).
    """
    import psycopg

    from ingest_api.core.config import FleetSettings
    from ingest_api.core.migrate import migrate
    from welfare.sample.fleet import seed_fleet
    from welfare.services.postgres import PostgresServer

    with PostgresServer(workdir / "pg", fsync=False) as server:
        url = server.create_database("fleet")
        migrate(url)
        with psycopg.connect(url) as conn:
            seed_fleet(conn, now=datetime.now(UTC), rules=FleetSettings())
        with serve(url) as base:
            yield base, url


@contextlib.contextmanager
def serve(url: str) -> Iterator[str]:
    """The central service (no consumer) on a free port; the recorded state stays as it is
    while it is looked at: no fleet monitor, no rollup refresh."""
    import uvicorn

    from ingest_api.core.config import FleetSettings, Settings
    from ingest_api.main import create_app
    from welfare.services.ports import free_port

    settings = Settings(
        database_url=url, refresh_interval_s=0, fleet=FleetSettings(check_interval_s=0)
    )
    port = free_port()
    web = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, consume=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=web.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not web.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    from welfare.services.chromium import HEADLESS_ARGS, find_chromium

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=list(HEADLESS_ARGS)
        )
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(
    chromium: Any, url: str, *, session: str, width: int = 1280, height: int = 900
) -> Any:
    """A page at `url`, signed in with `session`, once its charts (if any) have drawn."""
    from urllib.parse import urlsplit

    from ingest_api.core.sessions import SESSION_COOKIE

    context = chromium.new_context(viewport={"width": width, "height": height}, locale="ko-KR")
    # The whole site's cookie, as the sign-in page sets it (the pages fetch /api/… too).
    host = urlsplit(url).hostname or "127.0.0.1"
    context.add_cookies([{"name": SESSION_COOKIE, "value": session, "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("networkidle")
    if page.locator("#charts").count():
        page.wait_for_selector("#charts[data-loaded]", timeout=15_000)
    return page


def screenshots(base: str, out: Path, *, session: str) -> list[Path]:
    """Photograph the dashboard's pages into `out`, signed in with `session`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser() as chromium:
        for name, (path, width) in SHOTS.items():
            page = open_page(chromium, base + path, session=session, width=width)
            page.screenshot(path=str(out / name), full_page=True)
            page.close()
            written.append(out / name)
    return written


def _screenshots(args: argparse.Namespace) -> int:
    """`welfare fleet screenshots` (stopped by Ctrl-C or SIGTERM: its servers stop too)."""
    with (
        contextlib.suppress(KeyboardInterrupt),
        sigterm_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="welfare-fleet-") as tmp,
        sample_service(Path(tmp)) as (base, url),
    ):
        session, password = operator_session(url)
        for path in screenshots(base, args.out, session=session):
            print(f"wrote {path}")
        if args.serve:
            print(
                f"dashboard: {base}/fleet — sign in as {OPERATOR} / {password} (this run only);"
                " serving until Ctrl-C or SIGTERM",
                flush=True,
            )
            while True:
                time.sleep(1)
    return 0
