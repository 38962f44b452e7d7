"""Prometheus metrics of the center, after real traffic through Mosquitto and the ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from broker.auth import DeviceIdentity
from broker.config import MqttSettings
from broker.examples import examples
from ingest_api.core.config import FleetSettings, Settings
from ingest_api.core.security import Permission
from ingest_api.main import create_app
from tests.conftest import BrokerFactory, ingest_password
from tests.helpers import mqtt_client, sql_scalar, wait_until
from tests.security_helpers import token_headers
from welfare.services.ports import free_port

DEVICE = DeviceIdentity("B", "meal-1")
ROOT = Path(__file__).parents[3]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """The app served on a free port (its lifespan runs: pool, consumer), as `ingest run`."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="the service to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_metrics_count_messages_rows_duplicates_dead_letters_devices_and_latency(
    broker_factory: BrokerFactory, database_url: str
) -> None:
    """What the ingest did, as Prometheus reads it from the service's /metrics."""
    broker = broker_factory([DEVICE])
    settings = Settings(
        database_url=database_url,
        mqtt=MqttSettings(port=broker.port, password=ingest_password(broker)),
        refresh_interval_s=0,
        fleet=FleetSettings(check_interval_s=0),
    )
    attendance_topic, attendance = examples()["attendance"]
    health_topic, health = examples()["health"]
    presence_topic, presence = examples()["presence"]
    # A heartbeat speaking for another kiosk on this kiosk's topic: a dead letter.
    stranger = json.dumps(json.loads(health) | {"device_id": "meal-2"})
    with running(create_app(settings)) as base:
        wait_until(
            lambda: httpx.get(f"{base}/healthz").json()["consumer"]["connected"],
            what="the service's consumer",
        )
        device = mqtt_client(
            broker.port, DEVICE.username, broker.passwords[DEVICE.username], "B.meal-1"
        )
        for topic_name, payload in (
            (health_topic, stranger),
            (health_topic, health),
            (
                presence_topic,
                presence.replace('"offline"', '"online"').replace("connection_lost", "connected"),
            ),
            (attendance_topic, attendance),
            (attendance_topic, attendance),  # the same event again: a duplicate
        ):
            device.publish(topic_name, payload, qos=1).wait_for_publish(10)
        device.loop_stop()
        device.disconnect()
        wait_until(
            lambda: (
                sql_scalar(database_url, "SELECT value FROM ingest_metrics WHERE name = 'messages'")
                == 5
            ),
            what="five messages taken",
        )
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 401  # no token, no data
        scraper = token_headers(database_url, "prometheus", [Permission.FLEET_READ])
        response = httpx.get(f"{base}/metrics", timeout=30, headers=scraper)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = samples(response.text)
    assert found[("welfare_ingest_messages_total", ())] == 5
    assert found[("welfare_ingest_events_written_total", ())] == 1
    assert found[("welfare_ingest_events_duplicate_total", ())] == 1
    assert found[("welfare_ingest_dead_letters_total", (("reason", "topic_mismatch"),))] == 1
    assert found[("welfare_devices", (("state", "online"),))] == 1
    assert found[("welfare_devices", (("state", "offline"),))] == 0
    assert found[("welfare_alerts_open", (("acknowledged", "false"), ("kind", "offline")))] == 0
    assert found[("welfare_devices_outbox_pending", ())] == 3  # the example heartbeat's
    consumer_label = (("consumer", "ingest-1"),)
    assert found[("welfare_ingest_batch_latency_seconds_count", consumer_label)] >= 1
    assert found[("welfare_ingest_batch_write_seconds_count", consumer_label)] >= 1
    assert found[("welfare_ingest_queue_depth", consumer_label)] == 0
    assert found[("welfare_ingest_broker_connected", consumer_label)] == 1


def test_a_consume_only_worker_serves_its_own_metrics(
    broker_factory: BrokerFactory, database_url: str
) -> None:
    """`welfare ingest consume --metrics-port` exposes that worker's latency and queue."""
    broker = broker_factory([DEVICE])
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        WELFARE_MQTT__PORT=str(broker.port),
        WELFARE_MQTT__PASSWORD=ingest_password(broker),
        WELFARE_CONSUMER_ID="worker-7",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "welfare.cli", "ingest", "consume", "--metrics-port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if 'welfare_ingest_broker_connected{consumer="worker-7"} 1.0' in text:
                break
            time.sleep(0.2)
        found = samples(text)
        assert found[("welfare_ingest_broker_connected", (("consumer", "worker-7"),))] == 1
        assert ("welfare_ingest_queue_depth", (("consumer", "worker-7"),)) in found
    finally:
        proc.terminate()
        proc.wait(20)
