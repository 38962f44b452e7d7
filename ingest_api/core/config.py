"""Settings of the central service: the one settings class of `welfare ingest …` processes.

Environment: DATABASE_URL (or WELFARE_DATABASE_URL), WELFARE_MQTT__HOST/__PORT/__USERNAME/
__PASSWORD (broker/config.py, the same names a kiosk reads), WELFARE_CREDENTIAL_KEY (the same
card-hash key the kiosks of the city use), WELFARE_CONSUMER_ID and the consumer's batching.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.auth import INGEST_USER
from broker.config import CredentialKey, MqttSettings, Timezone
from broker.const import DEFAULT_TIMEZONE


class Settings(BaseSettings):
    """Where the database and broker are, the hashing key, and how the consumer batches."""

    model_config = SettingsConfigDict(
        env_prefix="WELFARE_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        min_length=1, validation_alias=AliasChoices("DATABASE_URL", "WELFARE_DATABASE_URL")
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    # Registering members and cards hashes their identifiers with it; without it the registry
    # refuses those writes (there is deliberately no default key).
    credential_key: CredentialKey | None = None
    # Facility local time for "today" on the pages; each kiosk decides in its own.
    timezone: Timezone = DEFAULT_TIMEZONE
    consumer_id: str = Field(default="ingest-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    shared_subscription: bool = True
    batch_max_messages: int = Field(default=200, ge=1, le=10_000)
    batch_linger_ms: int = Field(default=20, ge=0, le=5_000)
    queue_size: int = Field(default=2_000, ge=10)
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=200)
    # The figures' rollup is brought up to date in the background this often (0: never, for
    # tests that refresh explicitly); requests only ever read it.
    refresh_interval_s: float = Field(default=2.0, ge=0, le=3600)
    # Fleet sync (ingest_api/registry/sync.py): how often registry changes and devices'
    # reports are looked for, and how long a pushed roster update waits for an offline
    # device (one that comes back later asks with the version it holds instead).
    fleet_poll_s: float = Field(default=1.0, gt=0, le=60)
    fleet_push_ttl_s: int = Field(default=60, ge=1, le=86_400)
    production: bool = False

    @model_validator(mode="after")
    def _complete_and_safe(self) -> Settings:
        """The ingest's broker account by default; in production every secret must be set."""
        if self.mqtt.username is None:
            self.mqtt = self.mqtt.model_copy(update={"username": INGEST_USER})
        if self.pool_max_size < self.pool_min_size:
            raise ValueError("pool_max_size must not be below pool_min_size")
        if self.production:
            missing = [
                name
                for name, value in (
                    ("WELFARE_MQTT__PASSWORD", self.mqtt.password),
                    ("WELFARE_CREDENTIAL_KEY", self.credential_key),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}")
        return self
