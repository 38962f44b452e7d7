"""Hostile and broken input at the ingest: each answered, counted, and the consumer runs on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg

from broker.auth import DeviceIdentity
from broker.examples import examples
from broker.ids import uuid7
from broker.models import AttendanceBatch, AttendanceEvent
from broker.vocabulary import Method, Outcome
from ingest_api.registry.rosters import issue_roster
from tests.conftest import BrokerFactory, IngestFactory
from tests.helpers import mqtt_client, sql_scalar, wait_until
from welfare.services.mosquitto import MosquittoServer

DEVICE = DeviceIdentity("B", "meal-1")
TOPIC = "welfare/v1/B/meal-1/attendance"


def _device(broker: MosquittoServer) -> mqtt.Client:
    """A connected client with the device's own account."""
    return mqtt_client(broker.port, DEVICE.username, broker.passwords[DEVICE.username], "dev")


ISSUED = json.loads(examples()["roster"][1])["version"]  # the roster the test issues


def _batch(*, at: datetime, roster_version: str | None = ISSUED) -> str:
    """A valid one-event batch stamped at `at`."""
    event = AttendanceEvent(
        event_id=uuid7(at),
        occurred_at=at,
        service_date=at.date(),
        program_id="B-MEAL",
        member_ref="B-M00001",
        method=Method.CARD,
        outcome=Outcome.ACCEPTED,
        roster_version=roster_version,
    )
    return AttendanceBatch(
        facility_id="B", device_id="meal-1", sent_at=at, events=[event]
    ).model_dump_json()


def _metrics(url: str) -> dict[str, int]:
    """The consumer's counters."""
    with psycopg.connect(url) as conn:
        return {str(n): int(v) for n, v in conn.execute("SELECT name, value FROM ingest_metrics")}


def test_each_hostile_message_is_dead_lettered_and_counted(
    broker_factory: BrokerFactory, ingest_factory: IngestFactory, database_url: str
) -> None:
    """Malformed, mistyped, unknown-version, oversized and misaddressed input."""
    broker = broker_factory([DEVICE])
    consumer = ingest_factory(broker)
    device = _device(broker)
    doc = json.loads(examples()["attendance"][1])
    hostile = {
        "invalid_json": b'{"schema_version": 1, "events": [',
        "invalid_message": json.dumps({**doc, "events": [{"event_id": 7}]}).encode(),
        "unknown_schema_version": json.dumps({**doc, "schema_version": 2}).encode(),
        "oversize": b"[" + b"1," * 200_000 + b"1]",
        "topic_mismatch": json.dumps({**doc, "facility_id": "E"}).encode(),
    }
    try:
        for payload in hostile.values():
            device.publish(TOPIC, payload, qos=1).wait_for_publish(10)
        device.publish(TOPIC, examples()["attendance"][1], qos=1).wait_for_publish(10)
        wait_until(lambda: sql_scalar(database_url, "SELECT count(*) FROM attendance_events") == 1)
        wait_until(lambda: sql_scalar(database_url, "SELECT count(*) FROM dead_letters") == 5)
    finally:
        device.disconnect()
    with psycopg.connect(database_url) as conn:
        kept: dict[str, bytes] = dict(conn.execute("SELECT reason, payload FROM dead_letters"))
    assert {r: bytes(p) for r, p in kept.items()} == hostile  # reason and the raw bytes
    metrics = _metrics(database_url)
    for reason in hostile:
        assert metrics[f"dead_letter.{reason}"] == 1, reason
    assert consumer.connected
    assert consumer.stats.dead_letters == 5


def test_replays_skewed_clocks_and_unknown_rosters_are_kept_flagged_and_counted(
    broker_factory: BrokerFactory, ingest_factory: IngestFactory, database_url: str
) -> None:
    """A replay is stored once; odd times and unissued rosters are flagged, never dropped."""
    broker = broker_factory([DEVICE])
    ingest_factory(broker)
    roster = json.loads(examples()["roster"][1])
    from broker.models import Roster

    center = mqtt_client(broker.port, "ingest", broker.passwords["ingest"], "center-admin")
    with psycopg.connect(database_url) as conn:
        issue_roster(conn, center, roster=Roster.model_validate(roster)).wait_for_publish(10)
    center.disconnect()
    now = datetime.now(UTC)
    replayed = _batch(at=now - timedelta(minutes=1))
    device = _device(broker)
    try:
        for payload in (
            replayed,
            replayed,
            replayed,  # a replay attack or a resend: the same event three times
            _batch(at=now + timedelta(days=2)),
            _batch(at=now - timedelta(days=400)),
            _batch(at=now - timedelta(minutes=2), roster_version="forged-roster"),
        ):
            device.publish(TOPIC, payload, qos=1).wait_for_publish(10)
        wait_until(lambda: _metrics(database_url).get("messages", 0) >= 6, what="six messages")
    finally:
        device.disconnect()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT flags, received_at - occurred_at FROM attendance_events ORDER BY occurred_at"
        ).fetchall()
    assert [r[0] for r in rows] == [["clock_past"], ["roster_unknown"], [], ["clock_future"]]
    assert rows[0][1] > timedelta(days=399)  # the server's receive time is kept beside it
    metrics = _metrics(database_url)
    assert metrics["events.duplicate"] == 2
    assert metrics["flag.clock_future"] == metrics["flag.clock_past"] == 1
    assert metrics["flag.roster_unknown"] == 1
    assert sql_scalar(database_url, "SELECT count(*) FROM dead_letters") == 0
