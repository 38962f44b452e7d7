"""Edge agents -> Mosquitto -> ingest -> PostgreSQL: every event exactly once, across outages."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

from broker.auth import DeviceIdentity
from broker.config import MqttSettings
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from tests.conftest import BrokerFactory, IngestFactory
from welfare.sample.centers import CENTERS, Tap, day_of_taps, people, roster_for
from welfare.services.mosquitto import MosquittoServer

KEY = b"e2e-test-credential-key-32-bytes"
DAY = date(2026, 11, 20)
KIOSKS = [("B", "meal-1"), ("B", "meal-2"), ("E", "meal-1")]


class ReplayClock:
    """Each kiosk's clock follows the taps it replays."""

    def __init__(self) -> None:
        """Start at the first moment of the day."""
        self.at = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        """Now, in the replay."""
        return self.at


def _settings(tmp: Path, facility: str, device: str, broker: MosquittoServer) -> EdgeSettings:
    """A kiosk that talks to the test broker, resending quickly."""
    ident = DeviceIdentity(facility, device)
    return EdgeSettings(
        facility_id=facility,
        device_id=device,
        database=tmp / f"{facility}-{device}.sqlite3",
        credential_key=KEY.decode(),
        resend_after_s=2.0,
        health_interval_s=5.0,
        mqtt=MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            username=ident.username,
            password=broker.passwords[ident.username],
        ),
    )


async def _replay(agent: EdgeAgent, clock: ReplayClock, taps: list[Tap]) -> None:
    """Tap every card at its moment."""
    for tap in taps:
        clock.at = tap.at
        await agent.tap(tap.card_uid)


async def _wait_drained(agents: list[EdgeAgent]) -> None:
    """Until every device has its every event confirmed by the center."""
    async with asyncio.timeout(90):
        while True:
            pending = [(await a.store.stats()).pending for a in agents]
            if not any(pending):
                return
            await asyncio.sleep(0.2)


async def test_every_event_stored_exactly_once_across_a_broker_kill(
    tmp_path: Path,
    broker_factory: BrokerFactory,
    ingest_factory: IngestFactory,
    database_url: str,
) -> None:
    """Three kiosks replay a lunch; the broker is SIGKILLed and restarted mid-rush."""
    broker = broker_factory([DeviceIdentity(f, d) for f, d in KIOSKS])
    ingest_factory(broker)
    centers = {c.facility_id: c for c in CENTERS}
    async with AsyncExitStack() as stack:
        agents, clocks, plans = [], [], []
        for facility, device in KIOSKS:
            center = centers[facility]
            persons = people(center)
            clock = ReplayClock()
            agent = await stack.enter_async_context(
                EdgeAgent(_settings(tmp_path, facility, device, broker), clock=clock)
            )
            await agent.load_roster(
                roster_for(center, device, persons, key=KEY, issued_at=clock.at)
            )
            agents.append(agent)
            clocks.append(clock)
            plans.append(day_of_taps(center, device, persons, DAY))
        kiosks = list(zip(agents, clocks, plans, strict=True))

        async def phase(lo: int, hi: int | None) -> None:
            """Replay the same share of every kiosk's day at once."""
            await asyncio.gather(*(_replay(a, c, p[lo:hi]) for a, c, p in kiosks))

        await phase(0, 60)
        broker.kill()  # SIGKILL: whatever Mosquitto had not saved is gone
        await phase(60, 80)  # taps while the broker is down: decided and stored locally
        await asyncio.to_thread(broker.start)
        await phase(80, None)
        await _wait_drained(agents)
        on_devices = [str(e.event_id) for a in agents for e in await a.store.all_events()]

    with psycopg.connect(database_url) as conn:
        stored = [str(r[0]) for r in conn.execute("SELECT event_id FROM attendance_events")]
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        messages = conn.execute(
            "SELECT value FROM ingest_metrics WHERE name = 'messages'"
        ).fetchone()
    attempted = sum(len(p) for p in plans)
    assert len(on_devices) == attempted  # every tap became exactly one event on its device
    assert len(stored) == len(set(stored)) == attempted  # nothing duplicated
    assert set(stored) == set(on_devices)  # nothing lost
    assert dead == (0,)
    assert messages is not None
    assert messages[0] < attempted  # the backlog after the outage went out in batches
