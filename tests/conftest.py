"""Shared fixtures: a real PostgreSQL cluster and real Mosquitto brokers started per test run."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.auth import INGEST_USER, DeviceIdentity
from broker.config import MqttSettings
from ingest_api.ingest.consumer import IngestConsumer
from welfare.services.mosquitto import MosquittoServer, find_mosquitto


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One throw-away PostgreSQL cluster for the run (TimescaleDB preloaded when installed)."""
    from welfare.services.postgres import PostgresServer

    server = PostgresServer(tmp_path_factory.mktemp("pg"), fsync=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(pg_server: object) -> str:
    """A fresh, migrated database for one test."""
    from ingest_api.core.migrate import migrate
    from welfare.services.postgres import PostgresServer

    assert isinstance(pg_server, PostgresServer)
    url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    migrate(url)
    return url


BrokerFactory = Callable[[list[DeviceIdentity]], MosquittoServer]


def _ensure_mosquitto() -> None:
    """Install Mosquitto from Debian when it is missing and we may (root with apt-get)."""
    try:
        find_mosquitto()
    except FileNotFoundError:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "mosquitto", "mosquitto-clients"],
            check=True,
            env=env,
        )


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Start brokers with the project's configuration and credentials for the given devices."""
    _ensure_mosquitto()
    started: list[MosquittoServer] = []

    def make(devices: list[DeviceIdentity]) -> MosquittoServer:
        server = MosquittoServer(tmp_path / f"mosquitto-{len(started)}", devices=list(devices))
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def ingest_password(broker: MosquittoServer) -> str:
    """The ingest service's password on a test broker."""
    return broker.passwords[INGEST_USER]


IngestFactory = Callable[..., "IngestConsumer"]


@pytest.fixture
def ingest_factory(database_url: str) -> Iterator[IngestFactory]:
    """Start ingest consumers against a broker and the test database; all stopped at the end."""
    from ingest_api.core.config import Settings

    running: list[IngestConsumer] = []

    def make(
        broker: MosquittoServer, *, consumer_id: str = "ingest-1", **kw: object
    ) -> IngestConsumer:
        settings = Settings(
            database_url=database_url,
            mqtt=MqttSettings(port=broker.port, password=ingest_password(broker)),
            consumer_id=consumer_id,
            **kw,  # type: ignore[arg-type]
        )
        consumer = IngestConsumer(settings)
        consumer.start()
        assert consumer.wait_connected(20), "ingest could not connect to the broker"
        running.append(consumer)
        return consumer

    yield make
    for consumer in running:
        consumer.stop()
