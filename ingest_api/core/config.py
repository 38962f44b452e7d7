"""Settings of the central service (environment: DATABASE_URL, WELFARE_*)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.auth import INGEST_USER


class IngestSettings(BaseSettings):
    """Where the database and broker are, and how the consumer batches."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_", extra="ignore")

    database_url: str = Field(validation_alias=AliasChoices("DATABASE_URL", "WELFARE_DATABASE_URL"))
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = INGEST_USER
    mqtt_password: SecretStr | None = None
    consumer_id: str = Field(default="ingest-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    shared_subscription: bool = True
    batch_max_messages: int = Field(default=200, ge=1, le=10_000)
    batch_linger_ms: int = Field(default=20, ge=0, le=5_000)
    queue_size: int = Field(default=2_000, ge=10)
    production: bool = False

    @model_validator(mode="after")
    def _safe_for_production(self) -> IngestSettings:
        """In production the broker must require a real password."""
        if self.production:
            pw = self.mqtt_password.get_secret_value() if self.mqtt_password else ""
            if len(pw) < 16:
                raise ValueError("production needs WELFARE_MQTT_PASSWORD of 16+ characters")
        return self
