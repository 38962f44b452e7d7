"""Small helpers shared by tests: waiting, SQL counts, MQTT clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def wait_until(
    check: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until true, or fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sql_scalar(url: str, query: str, *params: Any) -> Any:
    """Run one query and return its single value."""
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode(), params or None).fetchone()
        assert row is not None
        return row[0]


def mqtt_client(port: int, username: str, password: str, client_id: str) -> mqtt.Client:
    """A connected v5 client with its network loop running."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client
