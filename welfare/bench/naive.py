"""The naive comparison: what most hand-written MQTT-to-database bridges do.

Auto-acknowledged QoS 1 subscription; in paho's callback, `json.loads` the message and
INSERT each event with its own statement in autocommit mode, i.e. one COMMIT (one WAL flush)
per row. No validation beyond JSON (generous to the naive bridge: Smart Welfare validates every
event against the contract). Run as `python -m welfare.bench.naive` with the same environment
as `welfare ingest consume` (DATABASE_URL, WELFARE_MQTT__PORT, WELFARE_MQTT__PASSWORD,
WELFARE_CONSUMER_ID).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker.auth import INGEST_USER
from broker.topics import Channel, ingest_subscription

_INSERT = (
    "INSERT INTO attendance_events (event_id, occurred_at, facility_id, device_id, service_date, "
    "program_id, member_ref, method, outcome, ticket_no, roster_version) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def main() -> int:
    """Consume until SIGTERM."""
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    done = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(ingest_subscription(Channel.ATTENDANCE, shared=False), qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        for e in doc["events"]:
            conn.execute(
                _INSERT,
                (
                    e["event_id"],
                    e["occurred_at"],
                    doc["facility_id"],
                    doc["device_id"],
                    e["service_date"],
                    e.get("program_id"),
                    e.get("member_ref"),
                    e["method"],
                    e["outcome"],
                    e.get("ticket_no"),
                    e.get("roster_version"),
                ),
            )

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=os.environ.get("WELFARE_CONSUMER_ID", "naive-1"),
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(INGEST_USER, os.environ["WELFARE_MQTT__PASSWORD"])
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", int(os.environ["WELFARE_MQTT__PORT"]), keepalive=30)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
