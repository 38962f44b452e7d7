"""A meal hall on real brokers: a city broker, a center broker bridged to it, two kiosks.

Every link goes through a test proxy (tests/faults/proxy.py), so a test can cut the center
from the city, or a kiosk from the center broker:

    kiosk meal-1 --proxy--\\
                           center broker (B) --proxy(city link)--> city broker <-- ingest
    kiosk meal-2 --proxy--/
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

from broker.auth import DeviceIdentity, bridge_username
from broker.config import MqttSettings
from broker.models import Roster
from broker.mosquitto import bridge_lines
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from ingest_api.registry import store
from ingest_api.registry.models import Facility, Program
from welfare.faults.proxy import FlakyProxy
from welfare.sample.centers import CENTERS, Person, people, roster_for
from welfare.services.mosquitto import MosquittoServer

KEY = b"hall-test-credential-key-3f9a1c7e"
FACILITY = "B"
MEAL = "B-MEAL"
KIOSKS = ("meal-1", "meal-2")
# Monday 2026-11-23, 12:00 in Seoul: lunch is on.
LUNCH = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 23)
CENTER = next(c for c in CENTERS if c.facility_id == FACILITY)


class Clock:
    """A kiosk's own clock (each kiosk has one: they need not agree)."""

    def __init__(self, at: datetime) -> None:
        """Start at `at`."""
        self.at = at

    def __call__(self) -> datetime:
        """Now, on this kiosk."""
        return self.at


@dataclass
class Hall:
    """The running hall: brokers, links, kiosks and their clocks."""

    city: MosquittoServer
    center: MosquittoServer
    city_link: FlakyProxy
    links: dict[str, FlakyProxy]
    kiosks: dict[str, EdgeAgent] = field(default_factory=dict)
    clocks: dict[str, Clock] = field(default_factory=dict)
    persons: list[Person] = field(default_factory=list)

    def eaters(self) -> list[Person]:
        """Active members of the meal program."""
        return [p for p in self.persons if MEAL in p.program_ids and p.status.value == "active"]


def register_hall(database_url: str, *, extra: tuple[str, str, str] | None = None) -> None:
    """The registry the figures need: facility B and its meal program (rule 'attendance'),
    and an `extra` (program id, name, unit business) of the same kind."""
    programs = [(MEAL, "경로식당 점심", "급식지원서비스"), *([extra] if extra else [])]
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id=FACILITY, name=CENTER.name))
        for program_id, name, unit in programs:
            program = Program(
                program_id=program_id,
                facility_id=FACILITY,
                name=name,
                function="service_provision",
                business_area="지역사회보호",
                unit_business=unit,
                fee_type="free",
                rule_id="attendance",
            )
            store.upsert_program(conn, program=program)


def _kiosk_settings(tmp: Path, device: str, port: int, password: str) -> EdgeSettings:
    """A kiosk of the hall that talks to the center broker through its own link."""
    ident = DeviceIdentity(FACILITY, device)
    return EdgeSettings(
        facility_id=FACILITY,
        device_id=device,
        database=tmp / f"{device}.sqlite3",
        credential_key=KEY.decode(),
        resend_after_s=2.0,
        health_interval_s=5.0,
        link_socket=None,
        metrics_port=None,
        mqtt=MqttSettings(host="127.0.0.1", port=port, username=ident.username, password=password),
    )


@asynccontextmanager
async def running_hall(
    tmp: Path, *, roster: Callable[[Roster], Roster] | None = None
) -> AsyncIterator[Hall]:
    """Start the brokers, links and both kiosks (rosters loaded, connected); stop them all.

    `roster` changes the sample roster of each kiosk first (a capacity, the day's sittings).
    """
    city = MosquittoServer(tmp / "city", bridges=[FACILITY])
    city.start()
    city_link = FlakyProxy(city.port)
    city_link.start()
    center = MosquittoServer(
        tmp / "center",
        devices=[DeviceIdentity(FACILITY, d) for d in KIOSKS],
        bridge=bridge_lines(
            facility_id=FACILITY,
            host="127.0.0.1",
            port=city_link.port,
            password=city.passwords[bridge_username(FACILITY)],
            restart_s=(1, 2),
        ),
    )
    center.start()
    links = {d: FlakyProxy(center.port) for d in KIOSKS}
    for link in links.values():
        link.start()
    hall = Hall(city, center, city_link, links, persons=people(CENTER))
    try:
        async with AsyncExitStack() as stack:
            for device in KIOSKS:
                clock = Clock(LUNCH)
                user = DeviceIdentity(FACILITY, device).username
                settings = _kiosk_settings(tmp, device, links[device].port, center.passwords[user])
                agent = await stack.enter_async_context(EdgeAgent(settings, clock=clock))
                sample = roster_for(CENTER, device, hall.persons, key=KEY, issued_at=LUNCH)
                await agent.load_roster(roster(sample) if roster else sample)
                hall.kiosks[device] = agent
                hall.clocks[device] = clock
            await wait_for(
                lambda: all(
                    a.publisher is not None and a.publisher.peers_heard.is_set()
                    for a in hall.kiosks.values()
                ),
                what="kiosks up, hearing each other",
            )
            yield hall
    finally:
        for link in links.values():
            link.stop()
        center.stop()
        city_link.stop()
        city.stop()


async def wait_for(check: Callable[[], object], *, within: float = 30.0, what: str) -> None:
    """Poll `check` (sync or returning an awaitable) until it is true, or fail naming `what`."""
    try:
        async with asyncio.timeout(within):
            while True:
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


async def drained(hall: Hall) -> bool:
    """Whether every kiosk has every event confirmed by the center."""
    return all([(await a.store.stats()).pending == 0 for a in hall.kiosks.values()])
