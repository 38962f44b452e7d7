"""The consumer against a real Mosquitto and PostgreSQL: exactly once, dead letters, acks."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from broker.auth import DeviceIdentity
from broker.examples import examples
from broker.models import IngestAck
from tests.broker.test_contract import doc_mosquitto_pub_payload
from tests.conftest import BrokerFactory, IngestFactory
from tests.helpers import mqtt_client, sql_scalar, wait_until

DEVICE = DeviceIdentity("B", "meal-1")


def _publish(port: int, password: str, topic_name: str, payload: str | bytes) -> None:
    """Publish once with mosquitto_pub at QoS 1, as anyone with the contract could."""
    subprocess.run(
        [
            "mosquitto_pub",
            "-p",
            str(port),
            "-u",
            DEVICE.username,
            "-P",
            password,
            "-t",
            topic_name,
            "-q",
            "1",
            "-s",
        ],
        input=payload if isinstance(payload, bytes) else payload.encode(),
        check=True,
        timeout=20,
    )


def test_example_payload_is_stored_once_and_acknowledged(
    broker_factory: BrokerFactory, ingest_factory: IngestFactory, database_url: str
) -> None:
    """Publishing the documented example twice leaves one row and confirms it to the device."""
    broker = broker_factory([DEVICE])
    consumer = ingest_factory(broker)
    password = broker.passwords[DEVICE.username]
    acks: list[IngestAck] = []
    got = threading.Event()
    device = mqtt_client(broker.port, DEVICE.username, password, "B.meal-1")

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        acks.append(IngestAck.model_validate_json(msg.payload))
        got.set()

    device.on_message = on_message
    device.subscribe("welfare/v1/B/meal-1/ack", qos=1)
    topic_name, payload = doc_mosquitto_pub_payload()  # exactly what docs/contract.md shows
    event_id = json.loads(payload)["events"][0]["event_id"]
    try:
        _publish(broker.port, password, topic_name, payload)
        wait_until(
            lambda: sql_scalar(database_url, "SELECT count(*) FROM attendance_events") == 1,
            what="the example event",
        )
        assert got.wait(10)
        assert [str(e) for e in acks[0].committed] == [event_id]
        _publish(broker.port, password, topic_name, payload)
        wait_until(lambda: len(acks) >= 2, what="second ack")  # a re-sent event is re-confirmed
        assert sql_scalar(database_url, "SELECT count(*) FROM attendance_events") == 1
        assert (
            sql_scalar(
                database_url, "SELECT value FROM ingest_metrics WHERE name = 'events.duplicate'"
            )
            == 1
        )
    finally:
        device.loop_stop()
        device.disconnect()
    assert consumer.stats.events_new == 1


def test_health_report_updates_fleet_status(
    broker_factory: BrokerFactory, ingest_factory: IngestFactory, database_url: str
) -> None:
    """A health message lands in device_status."""
    broker = broker_factory([DEVICE])
    ingest_factory(broker)
    topic_name, payload = examples()["health"]
    _publish(broker.port, broker.passwords[DEVICE.username], topic_name, payload)
    wait_until(
        lambda: sql_scalar(database_url, "SELECT count(*) FROM device_status") == 1,
        what="device status",
    )
    assert sql_scalar(database_url, "SELECT outbox_pending FROM device_status") == 3


def test_acl_stops_a_device_publishing_for_another(
    broker_factory: BrokerFactory, ingest_factory: IngestFactory, database_url: str
) -> None:
    """The broker drops a publish under another device's topic (nothing stored, nothing dead)."""
    broker = broker_factory([DEVICE, DeviceIdentity("B", "meal-2")])
    consumer = ingest_factory(broker)
    _, payload = examples()["attendance"]
    _publish(
        broker.port, broker.passwords[DEVICE.username], "welfare/v1/B/meal-2/attendance", payload
    )
    _publish(
        broker.port,
        broker.passwords[DEVICE.username],
        "welfare/v1/B/meal-1/health",
        examples()["health"][1],
    )
    wait_until(lambda: sql_scalar(database_url, "SELECT count(*) FROM device_status") == 1)
    assert sql_scalar(database_url, "SELECT count(*) FROM attendance_events") == 0
    assert consumer.stats.messages == 1
    _ = datetime.now(UTC)
