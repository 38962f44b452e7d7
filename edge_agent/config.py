"""Settings of one kiosk's edge agent (environment variables WELFARE_EDGE_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.const import ID_PATTERN
from broker.models import NameDisplay
from edge_agent.const import DEFAULT_TIMEZONE
from welfare.hashing import MIN_KEY_BYTES


class MqttSettings(BaseSettings):
    """Where and how the device reaches the broker."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_MQTT_")

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = 30


class EdgeSettings(BaseSettings):
    """Everything one edge agent needs; the credential key is never committed, only provisioned."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_EDGE_", env_nested_delimiter="__")

    facility_id: str = Field(pattern=ID_PATTERN)
    device_id: str = Field(pattern=ID_PATTERN)
    facility_name: str = "복지관"
    database: Path = Path("edge.sqlite3")
    credential_key: SecretStr
    timezone: str = DEFAULT_TIMEZONE
    name_display: NameDisplay = NameDisplay.MASKED
    resend_after_s: float = Field(default=30.0, gt=0)
    health_interval_s: float = Field(default=60.0, gt=0)
    mqtt: MqttSettings | None = None
    # Where the kiosk UI connects (edge_agent/link.py); None runs headless (reader + buzzer).
    link_socket: Path | None = Path("/run/welfare/edge-link.sock")

    @field_validator("credential_key")
    @classmethod
    def _strong_key(cls, value: SecretStr) -> SecretStr:
        """Refuse short or placeholder keys: they would make card hashes guessable."""
        raw = value.get_secret_value()
        if len(raw.encode()) < MIN_KEY_BYTES or raw.lower() in {"changeme", "secret", "password"}:
            raise ValueError(f"credential_key must be a random secret of {MIN_KEY_BYTES}+ bytes")
        return value
