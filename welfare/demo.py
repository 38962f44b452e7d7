"""`welfare demo`: five centers replay a day through the real pipeline and print the figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import unicodedata
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from welfare.sample.centers import CENTERS, SEOUL, Tap, day_of_taps, people, roster_for
from welfare.services.signals import sigterm_as_interrupt

_LOG = logging.getLogger("welfare.demo")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` command."""
    demo = sub.add_parser("demo", help="replay a day at the five centers end to end")
    demo.add_argument("--day", type=date.fromisoformat, help="service day (default: last weekday)")
    demo.add_argument("--serve", action="store_true", help="serve until Ctrl-C or SIGTERM")
    demo.add_argument(
        "--pace", type=float, default=0.002, help="seconds between taps at one kiosk (realism)"
    )
    demo.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    demo.set_defaults(handler=run)


def default_day() -> date:
    """The most recent weekday in Seoul (every program runs on weekdays)."""
    day = datetime.now(SEOUL).date()
    while day.isoweekday() > 5:
        day -= timedelta(days=1)
    return day


@contextlib.contextmanager
def _database(workdir: Path) -> Iterator[str]:
    """DATABASE_URL if given, else a bundled PostgreSQL (pgserver) that is stopped afterwards."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    import pgserver

    print("• starting a bundled PostgreSQL (pgserver)…", flush=True)
    server = pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


class _Clock:
    """A kiosk's clock following the replayed taps."""

    def __init__(self, at: datetime) -> None:
        """Start at `at`."""
        self.at = at

    def __call__(self) -> datetime:
        """Now, in the replay."""
        return self.at


async def _replay_kiosks(
    *, workdir: Path, day: date, mqtt_port: int, passwords: dict[str, str], key: bytes, pace: float
) -> dict[str, int]:
    """Run every kiosk of every center through the day; return taps per kiosk."""
    from broker.config import MqttSettings
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import EdgeSettings

    async def one(agent: EdgeAgent, clock: _Clock, taps: list[Tap]) -> None:
        for tap in taps:
            clock.at = tap.at
            await agent.tap(tap.card_uid)
            await asyncio.sleep(pace)

    counts: dict[str, int] = {}
    async with AsyncExitStack() as stack:
        agents, jobs = [], []
        for center in CENTERS:
            persons = people(center)
            for device in center.kiosks:
                username = f"{center.facility_id}.{device}"
                clock = _Clock(datetime.combine(day, datetime.min.time(), SEOUL).astimezone(UTC))
                settings = EdgeSettings(
                    facility_id=center.facility_id,
                    device_id=device,
                    facility_name=center.name,
                    database=workdir / f"edge-{username}.sqlite3",
                    credential_key=key.decode(),
                    resend_after_s=5,
                    health_interval_s=5,
                    mqtt=MqttSettings(
                        port=mqtt_port,
                        username=username,
                        password=passwords[username],
                    ),
                )
                agent = await stack.enter_async_context(EdgeAgent(settings, clock=clock))
                await agent.load_roster(
                    roster_for(center, device, persons, key=key, issued_at=clock.at)
                )
                taps = day_of_taps(center, device, persons, day)
                counts[username] = len(taps)
                agents.append(agent)
                jobs.append(one(agent, clock, taps))
        print(f"• {len(agents)} kiosks replay {sum(counts.values())} taps of {day}…", flush=True)
        await asyncio.gather(*jobs)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pending = sum([(await a.store.stats()).pending for a in agents])
            if pending == 0:
                break
            await asyncio.sleep(0.25)
        else:
            raise RuntimeError(f"{pending} events still unconfirmed after 120 s")
        print("• every event is confirmed by the center (the devices' outboxes are empty)")
        await asyncio.sleep(0.5)  # let the last health reports land
    return counts


def _get_json(url: str, token: str) -> Any:
    """GET a JSON document from the local API with the demo's service token."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - local http only
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - local http only
        return json.loads(resp.read())


def _post(url: str, token: str) -> Any:
    """POST to the local API (no body) with the service token and return its JSON answer."""
    request = urllib.request.Request(  # noqa: S310 - local http only
        url, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - local http only
        return json.loads(resp.read())


def _cell(text: object, width: int, *, right: bool = False) -> str:
    """Pad to a terminal width, counting Hangul as two columns."""
    value = str(text)
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)
    pad = " " * max(0, width - used)
    return pad + value if right else value + pad


def _print_figures(figures: list[dict[str, Any]], day: date) -> None:
    """The figures as staff read them: per center, then per program."""
    names = {c.facility_id: c.name for c in CENTERS}
    programs = {p.program_id: p.name for c in CENTERS for p in c.programs}
    print(f"\n{day} 출석 실적 (the figures engine, by each program's counting rule)")
    head = ("center", "program", "실인원 unique", "연인원 visits", "건 cases")
    print(
        _cell(head[0], 26)
        + _cell(head[1], 20)
        + "".join(_cell(h, 15, right=True) for h in head[2:])
    )
    for row in figures:
        total = row["program_id"] is None
        center = f"{row['facility_id']} {names.get(row['facility_id'], '')}" if total else ""
        program = "(all programs)" if total else programs.get(row["program_id"], "")
        numbers = (row["unique_persons"], row["person_visits"], row["cases"])
        print(
            _cell(center, 26)
            + _cell(program, 20)
            + "".join(_cell(n, 15, right=True) for n in numbers)
        )


def _report_month(base: str, day: date, token: str) -> dict[str, dict[str, int]]:
    """Each center's total in the month column of its quarterly report (from the same API)."""
    quarter = (day.month - 1) // 3 + 1
    month = f"{day:%Y-%m}"
    found: dict[str, dict[str, int]] = {}
    for center in CENTERS:
        report = _get_json(
            f"{base}/api/v1/figures/report?year={day.year}&quarter={quarter}"
            f"&facility_id={center.facility_id}",
            token,
        )
        total = next(r for r in report["rows"] if r["level"] == "total")
        found[center.facility_id] = total["periods"][month]["total"]
    return found


def run(args: argparse.Namespace) -> int:
    """Start everything, replay, print, stop (or serve until SIGTERM or Ctrl-C)."""
    try:
        with sigterm_as_interrupt():
            return _run(args)
    except KeyboardInterrupt:
        print("• stopped: nothing left running", flush=True)
        return 130


def _run(args: argparse.Namespace) -> int:
    """Start everything, replay, print, stop (or serve until interrupted)."""
    import psycopg
    import uvicorn

    from broker.auth import DeviceIdentity
    from broker.config import MqttSettings
    from ingest_api.auth.accounts import add_user
    from ingest_api.auth.tokens import issue_token
    from ingest_api.core.config import Settings
    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.core.migrate import migrate
    from ingest_api.core.security import Permission, Role
    from ingest_api.main import create_app
    from welfare.sample.city import load_centers
    from welfare.services.mosquitto import MosquittoServer
    from welfare.services.ports import free_port

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    day = args.day or default_day()
    key = os.urandom(16).hex().encode()  # a fresh credential key per demo run
    data_key = secrets.token_urlsafe(48)  # and a fresh key of personal fields
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="welfare-demo-")))
        url = stack.enter_context(_database(workdir))
        applied = migrate(url)
        admin_password = secrets.token_urlsafe(12)
        with psycopg.connect(url) as conn:
            members = load_centers(conn, key=key)
            # The demo's administrator (printed once) and the token its own API calls use.
            admin = add_user(
                conn,
                username="demo.admin",
                role=Role.CITY_ADMIN,
                actor="demo",
                display_name="데모 관리자",
                password=admin_password,
                cipher=FieldCipher([data_key.encode()]),
            )
            token = issue_token(
                conn,
                name="demo",
                scopes=[Permission.FIGURES_READ, Permission.FIGURES_REFRESH],
                actor="demo",
                now=datetime.now(UTC),
                days=1,
            )
        print(
            f"• database ready ({len(applied)} migrations applied; {len(CENTERS)} centers, "
            f"their programs and {members} members registered)"
        )
        devices = [DeviceIdentity(c.facility_id, d) for c in CENTERS for d in c.kiosks]
        broker = stack.enter_context(MosquittoServer(workdir / "mosquitto", devices=devices))
        print(f"• Mosquitto on 127.0.0.1:{broker.port} with {len(devices)} device accounts")
        settings = Settings(
            database_url=url,
            mqtt=MqttSettings(port=broker.port, password=broker.passwords["ingest"]),
            credential_key=key.decode(),
            data_key=data_key,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        stack.callback(thread.join, 15)
        stack.callback(setattr, server, "should_exit", True)
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        print(f"• central service on {base}")
        asyncio.run(
            _replay_kiosks(
                workdir=workdir,
                day=day,
                mqtt_port=broker.port,
                passwords=broker.passwords,
                key=key,
                pace=args.pace,
            )
        )
        # A POST may write: bring the rollup up to date now rather than wait for the service's
        # background refresh, so the figures below include the last confirmed event.
        _post(f"{base}/api/v1/figures/refresh", token)
        figures = _get_json(f"{base}/api/v1/figures/daily?start={day}", token)
        _print_figures(figures, day)
        month = _report_month(base, day, token)
        shown = ("unique_persons", "person_visits", "cases")
        day_totals = {
            f["facility_id"]: {k: f[k] for k in shown} for f in figures if f["program_id"] is None
        }
        if all(day_totals.get(fid) == {k: month[fid][k] for k in shown} for fid in day_totals):
            print(f"\nthe quarterly report's {day:%Y-%m} column shows the same figures")
        else:
            print(f"\nthe quarterly report's {day:%Y-%m} column also counts other days")
        if args.json:
            args.json.write_text(
                json.dumps({"day": str(day), "figures": figures, "report_month": month}, indent=2)
            )
        print(f"\nweb pages: {base}/  (figures and kiosk health), {base}/docs (API)")
        print(f"operators: {base}/fleet  (kiosks, alerts), {base}/metrics  (Prometheus)")
        print(
            f"sign in as {admin.username} / {admin_password} (this run only); second factor:"
            f" an authenticator app with secret {admin.totp_secret}, or"
            f" python -c \"import pyotp; print(pyotp.TOTP('{admin.totp_secret}').now())\""
        )
        print(f"demo took {time.monotonic() - started:.1f} s")
        if args.serve:
            print("serving until Ctrl-C (or SIGTERM) …", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while thread.is_alive():
                    time.sleep(0.5)
    print("• stopped: nothing left running")
    return 0
