"""A center (API, consumer, fleet sync) and real kiosks on a real broker's TLS listener."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from broker.auth import DeviceIdentity
from broker.const import DEFAULT_TIMEZONE
from broker.keys import facility_key
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.main import create_app
from ingest_api.registry import devices, schedules, store
from ingest_api.registry.models import (
    DeviceIn,
    Facility,
    MemberIn,
    Program,
    ScheduleIn,
    WeeklySession,
)
from tests.conftest import BrokerFactory
from tests.security_helpers import CIPHER, DATA_KEY, add_account, session_headers
from welfare.services.mosquitto import MosquittoServer

MASTER = "fleet-master-key-7c1e9a4b2d8f6035"
SEOUL = ZoneInfo(DEFAULT_TIMEZONE)
ALL_DAY = [
    WeeklySession(weekday=d, starts=time(0, 0), ends=time(23, 59), place="경로식당")
    for d in range(1, 8)
]


MEAL = Program(
    program_id="B-MEAL",
    facility_id="B",
    name="경로식당 점심",
    function="service_provision",
    business_area="지역사회보호",
    unit_business="급식지원서비스",
    fee_type="free",
    kind="meal",
)


def noon_today() -> datetime:
    """Today at noon in Seoul: inside every all-day sitting the center sends for today."""
    return datetime.combine(datetime.now(SEOUL).date(), time(12, 0), SEOUL)


def member(ref: str, card: str, **kw: Any) -> MemberIn:
    """A member of center B eating at the meal hall."""
    values: dict[str, Any] = {
        "member_ref": ref,
        "facility_id": "B",
        "display_name": "김순자",
        "card_uids": [card],
        "programs": {"B-MEAL": None},
    }
    values.update(kw)
    return MemberIn(**values)


@dataclass
class Fleet:
    """The running center and what a test needs to start kiosks against it."""

    url: str
    broker: MosquittoServer
    client: TestClient
    tmp: Path
    # Signed-in browsers: B's manager (registry, members), an operator (the fleet) and the
    # city's administrator (facility keys).
    manager: dict[str, str]
    operator: dict[str, str]
    admin: dict[str, str]

    def conn(self) -> psycopg.Connection[Any]:
        """A connection to the center's database (autocommit: each write is a registry change)."""
        return psycopg.connect(self.url, autocommit=True)

    def latest(self, device_id: str = "k1") -> tuple[str | None, str | None]:
        """(version, content hash) the center built last for B/<device_id>."""
        with self.conn() as c:
            row = c.execute(
                "SELECT latest_version, latest_hash FROM device_roster_state "
                "WHERE facility_id = 'B' AND device_id = %s",
                (device_id,),
            ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def settings(self, device_id: str = "k1", **kw: Any) -> EdgeSettings:
        """A kiosk of center B provisioned with B's key (version 1), over TLS."""
        ident = DeviceIdentity("B", device_id)
        values: dict[str, Any] = {
            "facility_id": "B",
            "device_id": device_id,
            "database": self.tmp / f"edge-{device_id}.sqlite3",
            "credential_key": facility_key(MASTER.encode(), facility_id="B", version=1),
            "resend_after_s": 2.0,
            "health_interval_s": 30.0,
            "link_socket": None,
            "mqtt": self.broker.mqtt_settings(ident.username),
        }
        values.update(kw)
        return EdgeSettings(**values)

    @asynccontextmanager
    async def kiosk(self, device_id: str = "k1", **kw: Any) -> AsyncIterator[EdgeAgent]:
        """A running edge agent whose clock is today's noon in Seoul."""
        at = noon_today()
        async with EdgeAgent(self.settings(device_id, **kw), clock=lambda: at) as agent:
            yield agent


@pytest.fixture
def fleet(database_url: str, broker_factory: BrokerFactory, tmp_path: Path) -> Iterator[Fleet]:
    """Center B with a meal hall open all day, one member, kiosks k1 and k2 registered."""
    broker = broker_factory([DeviceIdentity("B", "k1"), DeviceIdentity("B", "k2")])
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음종합사회복지관"))
        store.upsert_program(conn, program=MEAL)
        schedules.set_schedule(conn, program_id="B-MEAL", schedule=ScheduleIn(sessions=ALL_DAY))
        store.upsert_member(
            conn, member=member("B-M1", "04A1B2C3"), key=MASTER.encode(), cipher=CIPHER
        )
        for device_id in ("k1", "k2"):
            devices.register_device(
                conn,
                facility_id="B",
                device_id=device_id,
                device=DeviceIn(program_ids=["B-MEAL"]),
            )
    settings = Settings(
        database_url=database_url,
        mqtt=broker.mqtt_settings(),
        credential_key=MASTER,
        data_key=DATA_KEY,
        refresh_interval_s=0,
        fleet_poll_s=0.2,
        fleet_push_ttl_s=2,
    )
    accounts = {
        "b.manager": (Role.CENTER_MANAGER, "B"),
        "fleet.op": (Role.OPERATOR, None),
        "city.admin": (Role.CITY_ADMIN, None),
    }
    for name, (role, facility) in accounts.items():
        add_account(database_url, name, role, facility_id=facility)
    with TestClient(create_app(settings)) as client:
        consumer = client.app.state.consumer  # type: ignore[attr-defined]
        assert consumer.wait_connected(20), "the center's consumer did not subscribe"
        yield Fleet(
            database_url,
            broker,
            client,
            tmp_path,
            manager=session_headers(database_url, "b.manager"),
            operator=session_headers(database_url, "fleet.op"),
            admin=session_headers(database_url, "city.admin"),
        )


Check = Callable[[], Any]
