"""The broker's TLS listener: no anonymous access, and a device can only speak for itself."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.auth import INGEST_USER, DeviceIdentity
from broker.tls import ensure_tls
from tests.conftest import BrokerFactory
from tests.helpers import wait_until
from welfare.services.mosquitto import MosquittoServer

K1, K2 = DeviceIdentity("B", "k1"), DeviceIdentity("B", "k2")
NOT_AUTHORIZED = 135


class Client:
    """A connected MQTT v5 client on the broker's TLS listener, recording what it sees."""

    def __init__(self, broker: MosquittoServer, username: str | None, *, ca: Path | None = None):
        """Connect as `username` (None: anonymous) trusting `ca` (default: the broker's CA)."""
        assert broker.tls is not None
        self.connack: ReasonCode | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: list[list[ReasonCode]] = []
        self.pubacks: dict[int, ReasonCode] = {}
        self._event = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=username or "anonymous",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, broker.passwords[username])
        context = ssl.create_default_context(cafile=str(ca or broker.tls.ca_file))
        self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.subacks.append(codes)
        self.client.on_publish = self._on_publish
        self.client.connect(broker.bind, broker.tls_port)
        self.client.loop_start()
        self._event.wait(10)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        """Keep the CONNACK's reason."""
        self.connack = reason
        self._event.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        """Keep each PUBACK's reason."""
        self.pubacks[mid] = reason

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> MosquittoServer:
    """A broker with two kiosks of center B."""
    return broker_factory([K1, K2])


def test_no_anonymous_access_and_only_the_brokers_own_ca_is_trusted(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    """An anonymous client is refused; a client trusting another CA does not connect at all."""
    anonymous = Client(broker, None)
    try:
        assert anonymous.connack is not None
        assert anonymous.connack.is_failure
    finally:
        anonymous.close()
    other = ensure_tls(tmp_path / "other-ca", hosts=["127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(broker, K1.username, ca=other.ca_file)


def test_a_device_cannot_publish_as_another_device(broker: MosquittoServer) -> None:
    """The broker refuses k1's publish on k2's topics; the center never sees it."""
    center = Client(broker, INGEST_USER)
    k1 = Client(broker, K1.username)
    try:
        center.client.subscribe("welfare/v1/+/+/+", qos=1)
        wait_until(lambda: bool(center.subacks), what="the center's subscription")
        forged = [
            k1.client.publish(f"welfare/v1/B/k2/{channel}", b"{}", qos=1).mid
            for channel in ("attendance", "health", "sync")
        ]
        own = k1.client.publish("welfare/v1/B/k1/health", b"{}", qos=1).mid
        wait_until(lambda: len(k1.pubacks) == 4, what="four PUBACKs")
        assert [k1.pubacks[mid].value for mid in forged] == [NOT_AUTHORIZED] * 3
        assert not k1.pubacks[own].is_failure
        wait_until(lambda: bool(center.messages), what="k1's own message")
        assert [t for t, _ in center.messages] == ["welfare/v1/B/k1/health"]
    finally:
        center.close()
        k1.close()


def test_a_device_cannot_read_another_devices_roster_or_config(broker: MosquittoServer) -> None:
    """k1 may not subscribe to k2's downstream topics, nor gets k2's retained configuration."""
    center = Client(broker, INGEST_USER)
    try:
        for channel in ("roster", "config", "ack"):
            center.client.publish(
                f"welfare/v1/B/k2/{channel}", b'{"for": "k2"}', qos=1, retain=True
            ).wait_for_publish(10)
    finally:
        center.close()
    k1 = Client(broker, K1.username)
    k2 = Client(broker, K2.username)
    try:
        k1.client.subscribe([("welfare/v1/B/k2/roster", 1), ("welfare/v1/B/k2/config", 1)])
        k1.client.subscribe("welfare/v1/B/+/config", qos=1)  # a wildcard does not help either
        wait_until(lambda: len(k1.subacks) == 2, what="k1's SUBACKs")
        k2.client.subscribe([("welfare/v1/B/k2/roster", 1), ("welfare/v1/B/k2/config", 1)])
        wait_until(lambda: len(k1.subacks) == 2 and len(k2.subacks) == 1, what="SUBACKs")
        # Mosquitto grants the subscription but checks `read` at each delivery: k2 gets its
        # retained roster and configuration, k1 (subscribed before k2) gets nothing.
        wait_until(lambda: len(k2.messages) == 2, what="k2's retained roster and config")
        time.sleep(0.5)
        assert k1.messages == []
    finally:
        k1.close()
        k2.close()
