"""Staff pages under load: 50 signed-in staff working through the desk and field paths at once.

The real central service (`welfare ingest run --no-consume`, one uvicorn process) over the bed's
PostgreSQL, with a center of 2,000 members (phones, cards, enrolments). Each simulated staff
member has their own session and, after a think time (a practised user's pace, 0.5–1.5 s
between actions), works through the main paths in turn: search by name, open the member,
find a member by a card tapped on the desk reader, open and send the visitor form (the code
page follows), the contact form and the service form. A small async client (httpx) measures
each request from send to full answer; the row is the p95 over every request, and every
answer that is not the expected one counts as an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from broker.const import DEFAULT_TIMEZONE
from welfare.bench.bed import BENCH_FACILITY, Bed
from welfare.bench.results import Report, Row, percentile
from welfare.services.ports import free_port

GROUP = "6. Staff pages (desk and field)"
TARGET_MS = 200.0
# Made for each run: nothing of a bench is a secret kept anywhere.
CREDENTIAL_KEY = secrets.token_urlsafe(24)
DATA_KEY = secrets.token_urlsafe(40)
PASSWORD = secrets.token_urlsafe(16)
NAMES = ("김순자", "이영희", "박말순", "최옥분", "정복순", "강금례", "조명자", "윤정숙")


@dataclass(frozen=True)
class DeskScale:
    """Counts of one run."""

    staff: int = 50
    accounts: int = 10  # each account signed in on staff/accounts devices (argon2 per account)
    members: int = 2_000
    rounds: int = 4  # each staff member's passes through the paths
    think_s: tuple[float, float] = (0.5, 1.5)


QUICK = DeskScale(staff=5, accounts=2, members=100, rounds=1, think_s=(0.05, 0.1))


@dataclass
class Tally:
    """Latencies (ms) by path, and the answers that were not the expected ones."""

    ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, path: str, ms: float) -> None:
        """One request's time."""
        self.ms.setdefault(path, []).append(ms)

    def all(self) -> list[float]:
        """Every request's time."""
        return [v for values in self.ms.values() for v in values]


def _world(url: str, scale: DeskScale) -> list[tuple[str, str]]:
    """Facility B with programs, members with cards, and the staff's sessions.

    Returns (cookie, CSRF token) per simulated staff member.
    """
    from ingest_api.auth.accounts import add_user
    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.core.security import Role
    from ingest_api.core.sessions import create_session
    from ingest_api.registry import store
    from ingest_api.registry.models import Consent, Facility, MemberIn, Program

    cipher = FieldCipher([DATA_KEY.encode()])
    today = datetime.now(UTC).date()
    with psycopg.connect(url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id=BENCH_FACILITY, name="벤치"))
        for pid, function, rule in (
            ("B-MEAL", "service_provision", "attendance"),
            ("B-CARE", "case_management", "consultation"),
            ("B-ORG", "community_organizing", "network"),
        ):
            store.upsert_program(
                conn,
                program=Program(
                    program_id=pid,
                    facility_id=BENCH_FACILITY,
                    name=pid,
                    function=function,
                    business_area="지역사회보호",
                    unit_business="급식지원서비스",
                    fee_type="free",
                    rule_id=rule,
                ),
            )
        for n in range(scale.members):
            store.upsert_member(
                conn,
                member=MemberIn(
                    member_ref=f"B-{n:05d}",
                    facility_id=BENCH_FACILITY,
                    display_name=f"{NAMES[n % len(NAMES)]}{n}",
                    gender="F" if n % 3 else "M",
                    birth_date=today.replace(year=today.year - 70 - n % 20),
                    phone=f"010-{n % 10000:04d}-{(n * 7919) % 10000:04d}",
                    neighbourhood="우만1동",
                    consents=[Consent(kind="privacy", granted_on=today)],
                    card_uids=[f"BE{n:08X}"],
                    programs={"B-MEAL": None},
                ),
                key=CREDENTIAL_KEY.encode(),
                cipher=cipher,
            )
        sessions = []
        for a in range(scale.accounts):
            add_user(
                conn,
                username=f"bench.staff{a}",
                role=Role.CENTER_STAFF,
                actor="bench",
                facility_id=BENCH_FACILITY,
                password=PASSWORD,
                cipher=cipher,
            )
        conn.commit()
        for s in range(scale.staff):
            sessions.append(
                create_session(
                    conn,
                    username=f"bench.staff{s % scale.accounts}",
                    second_factor_pending=False,
                    now=datetime.now(UTC),
                    max_hours=12,
                )
            )
    return sessions


def _serve(bed: Bed, url: str) -> tuple[subprocess.Popen[str], str]:
    """The central service (pages and API, no consumer) in its own process; its base URL."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        WELFARE_CREDENTIAL_KEY=CREDENTIAL_KEY,
        WELFARE_DATA_KEY=DATA_KEY,
        WELFARE_MQTT__HOST="127.0.0.1",
        WELFARE_MQTT__PORT=str(bed.broker.port),
        WELFARE_REFRESH_INTERVAL_S="0",
    )
    log = (bed.dir / "desk-web.log").open("a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "welfare.cli", "ingest", "run", "--no-consume", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    return proc, base


async def _wait_up(base: str, proc: subprocess.Popen[str]) -> None:
    """Until the service answers its health check."""
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("the central service stopped; see desk-web.log")
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the central service did not start")


_KEY = re.compile(r'name="form_key" value="([0-9a-f-]{36})"')


async def _staff(
    base: str, session: tuple[str, str], n: int, scale: DeskScale, tally: Tally
) -> None:
    """One staff member working through the paths `rounds` times."""
    import httpx

    from ingest_api.core.sessions import CSRF_HEADER, SESSION_COOKIE

    rng = random.Random(n)  # noqa: S311 - think times and picks, not secrets
    tz = ZoneInfo(DEFAULT_TIMEZONE)
    headers = {"Accept": "text/html", CSRF_HEADER: session[1]}
    cookies = {SESSION_COOKIE: session[0]}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, cookies=cookies, timeout=30
    ) as client:

        async def ask(path: str, method: str, url: str, want: int, **kw: Any) -> str:
            await asyncio.sleep(rng.uniform(*scale.think_s))
            started = time.perf_counter()
            try:
                answer = await client.request(method, url, follow_redirects=False, **kw)
                text = answer.text
            except httpx.HTTPError as exc:
                tally.errors.append(f"{path}: {exc!r}"[:200])
                return ""
            tally.add(path, (time.perf_counter() - started) * 1000)
            if answer.status_code != want:
                tally.errors.append(f"{path}: {answer.status_code} {text[:120]!r}")
            return answer.headers.get("location", "") if want == 303 else text

        def key(page: str) -> str:
            found = _KEY.search(page)
            return found.group(1) if found else ""

        for _ in range(scale.rounds):
            member = rng.randrange(scale.members)
            await ask("search", "GET", f"/desk?q={NAMES[member % len(NAMES)]}{member}", 200)
            await ask("member", "GET", f"/desk/members/B-{member:05d}", 200)
            await ask("card", "POST", "/desk/card", 303, data={"uid": f"BE{member:08X}"})
            form = await ask("visitor form", "GET", "/field/visitors", 200)
            code_page = await ask(
                "visitor",
                "POST",
                "/field/visitors",
                303,
                data={
                    "form_key": key(form),
                    "gender": "M",
                    "age_band": "70-74",
                    "neighbourhood": "우만1동",
                    "purpose": "상담",
                },
            )
            if code_page:
                await ask("visitor code", "GET", code_page, 200)
            now = datetime.now(tz)
            form = await ask("contact form", "GET", "/field/contacts", 200)
            await ask(
                "contact",
                "POST",
                "/field/contacts",
                303,
                data={
                    "form_key": key(form),
                    "contact_code": f"C-B-{now:%Y%m%d}-{n:03d}",
                    "gender": "F",
                    "age_band": "80-84",
                    "neighbourhood": "우만2동",
                    "place": "경로당",
                    "met_at": (now - timedelta(minutes=rng.randrange(1, 100000))).strftime(
                        "%Y-%m-%dT%H:%M"
                    ),
                    "program_id": "B-ORG",
                    "needs": "안부",
                },
            )
            form = await ask("service form", "GET", "/services", 200)
            await ask(
                "service",
                "POST",
                "/services",
                303,
                data={
                    "form_key": key(form),
                    "kind": "phone_check",
                    "program_id": "B-CARE",
                    "target": "member",
                    "member_ref": f"B-{member:05d}",
                    "occurred_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
                },
            )


async def _load(base: str, sessions: list[tuple[str, str]], scale: DeskScale) -> Tally:
    """Every staff member at once."""
    tally = Tally()
    await asyncio.gather(*(_staff(base, s, n, scale, tally) for n, s in enumerate(sessions)))
    return tally


def run(bed: Bed, scale: DeskScale, report: Report) -> None:
    """Measure the pages under `scale.staff` concurrent staff; add the rows."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    url = bed.new_database("desk")
    sessions = _world(url, scale)
    proc, base = _serve(bed, url)
    try:
        asyncio.run(_wait_up(base, proc))
        started = time.perf_counter()
        tally = asyncio.run(_load(base, sessions, scale))
        wall = time.perf_counter() - started
    finally:
        bed.stop([proc])
    times = tally.all()
    p95 = percentile(times, 95)
    note = (
        f"{scale.staff} sessions ({scale.accounts} accounts), {len(times)} requests in "
        f"{wall:.0f} s, think time {scale.think_s[0]}–{scale.think_s[1]} s; one uvicorn "
        f"process; shared 2-core machine"
    )
    report.rows.append(
        Row(
            GROUP,
            f"page response p95, {scale.staff} staff working at once",
            None if p95 is None else round(p95, 1),
            "ms",
            target=f"≤ {TARGET_MS:.0f} ms",
            met=None if p95 is None else p95 <= TARGET_MS,
            note=note,
        )
    )
    report.rows.append(
        Row(
            GROUP,
            "requests answered other than expected",
            float(len(tally.errors)),
            "errors",
            target="0",
            met=not tally.errors,
            note="; ".join(tally.errors[:3]),
        )
    )
    report.details["desk"] = {
        "p50_ms": percentile(times, 50),
        "p95_ms": p95,
        "p99_ms": percentile(times, 99),
        "requests": len(times),
        "wall_s": wall,
        "by_path_p95_ms": {path: percentile(v, 95) for path, v in sorted(tally.ms.items())},
        "errors": tally.errors[:20],
    }
