"""Settings of one kiosk's edge agent: the one settings class of the `welfare edge` process.

Environment: WELFARE_FACILITY_ID, WELFARE_DEVICE_ID, WELFARE_CREDENTIAL_KEY (the same name as
at the center), WELFARE_DATABASE, WELFARE_MQTT__HOST/__PORT/__USERNAME/__PASSWORD/__KEEPALIVE
(broker/config.py; no WELFARE_MQTT__* at all runs stand-alone), the drivers'
WELFARE_HARDWARE__* (hardware/config.py), and WELFARE_FACILITY_NAME, WELFARE_TIMEZONE,
WELFARE_NAME_DISPLAY, WELFARE_RESEND_AFTER_S, WELFARE_HEALTH_INTERVAL_S, WELFARE_LINK_SOCKET.
The kiosk UI is another process with its own settings (kiosk_app/settings.py, WELFARE_KIOSK_*).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.config import CredentialKey, MqttSettings, Timezone
from broker.const import DEFAULT_TIMEZONE
from broker.vocabulary import EntityId, NameDisplay
from hardware.config import HardwareSettings


class EdgeSettings(BaseSettings):
    """Everything one edge agent needs; the credential key is provisioned, never committed."""

    model_config = SettingsConfigDict(
        env_prefix="WELFARE_", env_nested_delimiter="__", extra="ignore"
    )

    facility_id: EntityId
    device_id: EntityId
    facility_name: str = "복지관"
    database: Path = Path("edge.sqlite3")
    credential_key: CredentialKey
    timezone: Timezone = DEFAULT_TIMEZONE
    name_display: NameDisplay = NameDisplay.MASKED
    resend_after_s: float = Field(default=30.0, gt=0)
    health_interval_s: float = Field(default=60.0, gt=0)
    # Until the center's configuration says otherwise: how often the roster held is reported.
    sync_interval_s: float = Field(default=300.0, gt=0)
    mqtt: MqttSettings | None = None
    # Where the kiosk UI connects (edge_agent/link.py); None runs headless (reader + buzzer).
    link_socket: Path | None = Path("/run/welfare/edge-link.sock")
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)
