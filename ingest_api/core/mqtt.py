"""The center's MQTT clients (ingest consumer, fleet sync): one way to log in to the broker."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest_api.core.config import Settings


def center_client(settings: Settings, *, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """An MQTT v5 client of the ingest account, over TLS when configured, reconnecting."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    mqtt_settings = settings.mqtt
    if mqtt_settings.password is not None:
        client.username_pw_set(mqtt_settings.username, mqtt_settings.password_value())
    if (context := mqtt_settings.ssl_context()) is not None:
        client.tls_set_context(context)
    client.reconnect_delay_set(1, 15)
    return client
