"""Face match end to end: a center (API, consumer, fleet sync) with centers A and B, kiosks of
both on a real broker, and the photos the face tests use (tests/hardware/faces.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from PIL import Image

from broker.auth import DeviceIdentity
from broker.keys import facility_key
from edge_agent.agent import EdgeAgent
from edge_agent.config import EdgeSettings
from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.main import create_app
from ingest_api.registry import devices, schedules, store
from ingest_api.registry.models import DeviceIn, Facility, ScheduleIn
from tests.conftest import BrokerFactory
from tests.fleet.conftest import ALL_DAY, MASTER, MEAL, Fleet, member, noon_today
from tests.security_helpers import CIPHER, DATA_KEY, add_account, session_headers
from welfare.face_desk import describe_photo

A_MEAL = MEAL.model_copy(update={"program_id": "A-MEAL", "facility_id": "A"})


def portrait(image: np.ndarray) -> np.ndarray:
    """The astronaut's head and shoulders: her photo at the desk (the full picture shows a
    second face-like patch lower down, which the desk refuses as two faces)."""
    return np.ascontiguousarray(image[:300, 60:420])


def png(image: np.ndarray) -> str:
    """An RGB image as base64 PNG, as the desk page posts a photo."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass
class FaceCenter:
    """The running center, its accounts and kiosk settings (Fleet's, for A as well as B)."""

    fleet: Fleet
    a_manager: dict[str, str]
    b_staff: dict[str, str]

    @property
    def client(self) -> TestClient:
        """The center's HTTP client."""
        return self.fleet.client


@pytest.fixture
def face_center(
    database_url: str, broker_factory: BrokerFactory, tmp_path: Path
) -> Iterator[FaceCenter]:
    """Centers A and B with a meal hall each; member B-M1 (B) and A-M1 (A); kiosks B/k1,
    B/k2 and A/k1; the center's enrolment API with the desk's face describer."""
    idents = [DeviceIdentity("B", "k1"), DeviceIdentity("B", "k2"), DeviceIdentity("A", "k1")]
    broker = broker_factory(idents)
    with psycopg.connect(database_url) as conn:
        store.upsert_facility(conn, facility=Facility(facility_id="B", name="한마음종합사회복지관"))
        store.upsert_facility(conn, facility=Facility(facility_id="A", name="새봄종합사회복지관"))
        for program in (MEAL, A_MEAL):
            store.upsert_program(conn, program=program)
            schedules.set_schedule(
                conn, program_id=program.program_id, schedule=ScheduleIn(sessions=ALL_DAY)
            )
        store.upsert_member(
            conn, member=member("B-M1", "04A1B2C3"), key=MASTER.encode(), cipher=CIPHER
        )
        store.upsert_member(
            conn,
            member=member(
                "A-M1",
                "04A1B2C4",
                facility_id="A",
                display_name="박영희",
                programs={"A-MEAL": None},
            ),
            key=MASTER.encode(),
            cipher=CIPHER,
        )
        for ident in idents:
            devices.register_device(
                conn,
                facility_id=ident.facility_id,
                device_id=ident.device_id,
                device=DeviceIn(program_ids=[f"{ident.facility_id}-MEAL"]),
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
        "b.staff": (Role.CENTER_STAFF, "B"),
        "a.manager": (Role.CENTER_MANAGER, "A"),
        "fleet.op": (Role.OPERATOR, None),
        "city.admin": (Role.CITY_ADMIN, None),
    }
    for name, (role, facility) in accounts.items():
        add_account(database_url, name, role, facility_id=facility)
    with TestClient(create_app(settings, face_describer=describe_photo)) as client:
        consumer = client.app.state.consumer  # type: ignore[attr-defined]
        assert consumer.wait_connected(20), "the center's consumer did not subscribe"
        fleet = Fleet(
            database_url,
            broker,
            client,
            tmp_path,
            manager=session_headers(database_url, "b.manager"),
            operator=session_headers(database_url, "fleet.op"),
            admin=session_headers(database_url, "city.admin"),
        )
        yield FaceCenter(
            fleet,
            a_manager=session_headers(database_url, "a.manager"),
            b_staff=session_headers(database_url, "b.staff"),
        )


def kiosk_settings(center: FaceCenter, facility_id: str, device_id: str) -> EdgeSettings:
    """A kiosk of `facility_id` provisioned with its facility's key (version 1), over TLS."""
    fleet = center.fleet
    return EdgeSettings(
        facility_id=facility_id,
        device_id=device_id,
        database=fleet.tmp / f"edge-{facility_id}-{device_id}.sqlite3",
        credential_key=facility_key(MASTER.encode(), facility_id=facility_id, version=1),
        resend_after_s=2.0,
        health_interval_s=30.0,
        link_socket=None,
        mqtt=fleet.broker.mqtt_settings(DeviceIdentity(facility_id, device_id).username),
    )


@asynccontextmanager
async def kiosk(center: FaceCenter, facility_id: str, device_id: str) -> AsyncIterator[EdgeAgent]:
    """A running edge agent whose clock is today's noon in Seoul."""
    at = noon_today()
    settings = kiosk_settings(center, facility_id, device_id)
    async with EdgeAgent(settings, clock=lambda: at) as agent:
        yield agent


@pytest.fixture
def center(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The center's API (no broker) with B's meal hall, member B-M1, kiosk B/k1 and A/k1."""
    with TestClient(seeded_app(database_url)) as client:
        yield client, session_headers(database_url, "b.staff")


def seeded_app(database_url: str) -> FastAPI:
    """The center's app (no broker, the desk's describer) over B's and A's meal halls, member
    B-M1, kiosks B/k1 and A/k1, and B's staff account `b.staff`."""
    with psycopg.connect(database_url) as conn:
        for fid, name in (("B", "한마음종합사회복지관"), ("A", "새봄종합사회복지관")):
            store.upsert_facility(conn, facility=Facility(facility_id=fid, name=name))
        for program in (MEAL, A_MEAL):
            store.upsert_program(conn, program=program)
            schedules.set_schedule(
                conn, program_id=program.program_id, schedule=ScheduleIn(sessions=ALL_DAY)
            )
            devices.register_device(
                conn,
                facility_id=program.facility_id,
                device_id="k1",
                device=DeviceIn(program_ids=[program.program_id]),
            )
        store.upsert_member(
            conn, member=member("B-M1", "04A1B2C3"), key=MASTER.encode(), cipher=CIPHER
        )
    settings = Settings(
        database_url=database_url, credential_key=MASTER, data_key=DATA_KEY, refresh_interval_s=0
    )
    add_account(database_url, "b.staff", Role.CENTER_STAFF, facility_id="B")
    return create_app(settings, consume=False, face_describer=describe_photo)
