"""Staff pages under load: signed-in staff working through the follow-up and figures pages.

The real service (uvicorn, in its own process, `consume=False`: no broker needed) over the
bed's PostgreSQL with a center of members and two months of meals. `users` concurrent staff
sessions (cookie and CSRF token, made by the product's own session code) each loop through
the main paths for `seconds`, reading each page a few seconds (`think_s`) before the next
click: the meal hall's live part (what a tablet polls), the absence
list, a call recorded, the figures page, the statistics, the meal hall page. The row is the
p95 of the answers' times as the clients measured them (so an upper bound of the server's),
with the error count; a page that answers anything but 200/303 is an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from broker.const import DEFAULT_TIMEZONE
from broker.ids import uuid7
from welfare.bench.bed import BENCH_FACILITY, Bed
from welfare.bench.results import Report, Row, percentile
from welfare.services.ports import free_port

GROUP = "7. Staff pages (follow-up and figures)"
TARGET_MS = 200.0
PROGRAM = "B-MEAL"
CLASS = "B-YOGA"
# Random, per run: the bench's own database and file keys (never used elsewhere).
DATA_KEY = "bench-data-key-" + uuid.uuid4().hex
CREDENTIAL_KEY = "bench-credential-key-" + uuid.uuid4().hex


@dataclass(frozen=True)
class StaffScale:
    """Counts of one run."""

    users: int = 50
    accounts: int = 10
    members: int = 600
    days: int = 60
    seconds: float = 60.0
    # A person reads a page before the next click: seconds between requests, uniform.
    think_s: tuple[float, float] = (2.0, 6.0)


QUICK = StaffScale(users=5, accounts=2, members=60, days=10, seconds=4.0, think_s=(0.0, 0.2))


def _center(url: str, scale: StaffScale) -> None:
    """A center with a meal hall (two sittings a day) and a class, members, meals and staff."""
    from ingest_api.auth.accounts import add_user
    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.core.security import Role
    from ingest_api.figures import rollup
    from ingest_api.ingest.validation import EventRow
    from ingest_api.ingest.writes import insert_events
    from ingest_api.registry import schedules, store
    from ingest_api.registry.models import (
        Facility,
        MemberIn,
        Program,
        ScheduleIn,
        WeeklySession,
    )

    cipher = FieldCipher([DATA_KEY.encode()])
    tz = ZoneInfo(DEFAULT_TIMEZONE)
    today = datetime.now(tz).date()
    rng = random.Random(7)  # noqa: S311 (sample attendance, not a secret)
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id=BENCH_FACILITY, name="벤치"))
        for pid, name, kind in ((PROGRAM, "경로식당", "meal"), (CLASS, "요가교실", "class")):
            store.upsert_program(
                conn,
                program=Program(
                    program_id=pid,
                    facility_id=BENCH_FACILITY,
                    name=name,
                    function="service_provision",
                    business_area="지역사회보호",
                    unit_business="급식지원서비스",
                    fee_type="free",
                    kind=kind,
                    capacity=300,
                    team="지역복지팀",
                ),
            )
        sittings = [
            WeeklySession(weekday=d, starts=dtime(h), ends=dtime(h + 1), capacity=150)
            for d in range(1, 8)
            for h in (11, 12)
        ]
        schedules.set_schedule(conn, program_id=PROGRAM, schedule=ScheduleIn(sessions=sittings))
        for n in range(scale.members):
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=f"B-S{n:05d}",
                    facility_id=BENCH_FACILITY,
                    display_name=f"회원{n:04d}",
                    gender="F" if n % 3 else "M",
                    birth_date=date(1935 + n % 25, 1 + n % 12, 1),
                    phone=f"010-{n % 10000:04d}-{(n * 7) % 10000:04d}",
                    neighbourhood=["우만1동", "우만2동", "지동", "행궁동"][n % 4],
                    programs={PROGRAM: None} if n % 5 else {PROGRAM: None, CLASS: None},
                ),
                key=CREDENTIAL_KEY.encode(),
                cipher=cipher,
            )
        conn.execute("UPDATE enrolments SET enrolled_on = %s", (today - timedelta(days=365),))
        habit = {n: 0.7 + 0.3 * rng.random() for n in range(scale.members)}  # most come daily
        rows = []
        for back in range(scale.days, 0, -1):
            day = today - timedelta(days=back)
            for n in range(scale.members):
                # some stop coming in the last weeks: they are the absence list
                if rng.random() < habit[n] and not (n % 11 == 0 and back < 20):
                    at = datetime.combine(day, dtime(11, 0), tz).astimezone(UTC) + timedelta(
                        seconds=n * 5
                    )
                    rows.append(
                        EventRow(
                            uuid7(at),
                            at,
                            BENCH_FACILITY,
                            "bench-000",
                            day,
                            PROGRAM,
                            f"B-S{n:05d}",
                            "card",
                            "accepted",
                            n + 1,
                            "v1",
                            None,
                        )
                    )
        with conn.cursor() as cur:
            insert_events(cur, rows=rows)
        for a in range(scale.accounts):
            add_user(
                conn,
                username=f"bench.staff{a}",
                role=Role.CENTER_STAFF,
                actor="bench",
                facility_id=BENCH_FACILITY,
                password=f"bench-password-{uuid.uuid4().hex}",
                cipher=cipher,
            )
        rollup.refresh(conn)


def _sessions(url: str, scale: StaffScale) -> list[tuple[str, str]]:
    """(cookie, CSRF token) of each concurrent staff session."""
    from ingest_api.core.sessions import create_session

    with psycopg.connect(url) as conn:
        return [
            create_session(
                conn,
                username=f"bench.staff{u % scale.accounts}",
                second_factor_pending=False,
                now=datetime.now(UTC),
                max_hours=12,
            )
            for u in range(scale.users)
        ]


def _serve(url: str, port: int) -> subprocess.Popen[str]:
    """The central service in its own process (the pages and API, no MQTT consumer)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WELFARE_DATA_KEY": DATA_KEY,
        "WELFARE_CREDENTIAL_KEY": CREDENTIAL_KEY,
        "WELFARE_REFRESH_INTERVAL_S": "2",
        "WELFARE_SECURITY__MAINTENANCE_INTERVAL_S": "0",
        "WELFARE_FLEET__CHECK_INTERVAL_S": "0",
        "WELFARE_POOL_MAX_SIZE": "20",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "welfare.bench.staffpages:service",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            # longer than a person's pause between clicks: a kept-alive connection is not
            # closed under a client about to reuse it
            "--timeout-keep-alive",
            "30",
        ],
        env=env,
        text=True,
    )


def service() -> Any:
    """The app uvicorn serves (`--factory`): settings from the environment, no consumer."""
    from ingest_api.core.config import Settings
    from ingest_api.main import create_app

    return create_app(Settings(), consume=False)


async def _user(
    base: str,
    cookie: str,
    csrf: str,
    until: float,
    times: dict[str, list[float]],
    errors: list[str],
    rng: random.Random,
    think_s: tuple[float, float],
) -> None:
    """One signed-in staff member working through the pages until `until`."""
    from ingest_api.core.sessions import CSRF_HEADER, SESSION_COOKIE

    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}", "Accept": "text/html"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def hit(name: str, method: str, path: str, **kw: Any) -> httpx.Response | None:
            """One request, timed; anything but 200/303 is an error."""
            started = time.perf_counter()
            try:
                response = await client.request(method, path, **kw)
            except httpx.HTTPError as exc:
                errors.append(f"{name}: {exc!r}")
                return None
            times.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            if response.status_code not in (200, 303):
                errors.append(f"{name}: {response.status_code}")
            await asyncio.sleep(rng.uniform(*think_s))
            return response

        await asyncio.sleep(rng.uniform(0, think_s[1]))  # people do not all click at once
        while time.monotonic() < until:
            await hit("meal hall live", "GET", "/mealhall/live")
            listed = await hit("absence list", "GET", "/followup/absence")
            refs = (
                [chunk.split('"')[0] for chunk in listed.text.split('data-member="')[1:6]]
                if listed is not None
                else []
            )
            if refs:
                await hit(
                    "absence call",
                    "POST",
                    "/followup/absence/calls",
                    data={
                        "member_ref": rng.choice(refs),
                        "program_id": PROGRAM,
                        "call_id": str(uuid.uuid4()),
                        "outcome": rng.choice(["reached", "not_reached", "needs_visit"]),
                        "note": "벤치 통화",
                    },
                    headers={CSRF_HEADER: csrf},
                )
            await hit("figures", "GET", "/figures?level=program&program_id=" + PROGRAM)
            await hit("statistics", "GET", "/figures/statistics")
            await hit("meal hall", "GET", "/mealhall")


async def _load(
    base: str, sessions: list[tuple[str, str]], seconds: float, think_s: tuple[float, float]
) -> dict[str, Any]:
    """Every session working at once for `seconds`."""
    times: dict[str, list[float]] = {}
    errors: list[str] = []
    until = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(
        *(
            _user(base, cookie, csrf, until, times, errors, random.Random(i), think_s)  # noqa: S311
            for i, (cookie, csrf) in enumerate(sessions)
        )
    )
    return {"times": times, "errors": errors, "wall_s": time.monotonic() - started}


def _wait_up(base: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until the service answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the service exited at start")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the service did not start")


def run(bed: Bed, scale: StaffScale, report: Report) -> None:
    """Measure the staff pages under `scale.users` concurrent sessions; add the rows."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    url = bed.new_database("staffpages")
    _center(url, scale)
    sessions = _sessions(url, scale)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(url, port)
    try:
        _wait_up(base, proc)
        asyncio.run(_load(base, sessions[:1], 1.0, (0.0, 0.0)))  # warm: templates, caches
        found = asyncio.run(_load(base, sessions, scale.seconds, scale.think_s))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    every = [t for ts in found["times"].values() for t in ts]
    p95 = percentile(every, 95)
    errors: list[str] = found["errors"]
    per_page = {name: percentile(ts, 95) for name, ts in found["times"].items()}
    slowest = max(per_page.items(), key=lambda kv: kv[1] or 0.0) if per_page else ("", None)
    report.rows.append(
        Row(
            GROUP,
            f"{scale.users} signed-in staff, main paths: answer time p95",
            p95,
            "ms",
            target=f"≤ {TARGET_MS:.0f} ms, no error",
            met=p95 is not None and p95 <= TARGET_MS and not errors,
            note=f"{len(every)} requests in {found['wall_s']:.0f} s, "
            f"{scale.think_s[0]:.0f}-{scale.think_s[1]:.0f} s between a person's clicks "
            f"({len(every) / max(found['wall_s'], 0.001):.0f}/s), {len(errors)} errors; "
            f"slowest page {slowest[0]} p95 {slowest[1] or 0:.0f} ms; client-measured, "
            "server and clients on the same shared 2 cores",
        )
    )
    report.details["staff_pages"] = {
        "p95_ms_by_page": per_page,
        "requests_by_page": {name: len(ts) for name, ts in found["times"].items()},
        "errors": errors[:20],
        "members": scale.members,
        "days": scale.days,
    }
