"""Settings of the central service: the one settings class of `welfare ingest …` processes.

Environment: DATABASE_URL (or WELFARE_DATABASE_URL), WELFARE_MQTT__HOST/__PORT/__USERNAME/
__PASSWORD (broker/config.py, the same names a kiosk reads), WELFARE_CREDENTIAL_KEY (the same
card-hash key the kiosks of the city use), WELFARE_CONSUMER_ID and the consumer's batching;
WELFARE_MIGRATION_URL (the schema owner, for migrations only), WELFARE_DATA_KEY (personal
fields at rest), WELFARE_SECURITY__* (sessions, lockout, alerts: docs/security.md) and
WELFARE_FLEET__* (the fleet's offline rule and alert thresholds: docs/fleet.md),
WELFARE_FOLLOWUP__* (absence calls and the meal hall page: docs/staff.md).
"""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.auth import INGEST_USER
from broker.config import CredentialKey, DataKey, MqttSettings, Timezone
from broker.const import DEFAULT_TIMEZONE


class FleetSettings(BaseModel):
    """Operators' rules for the fleet (nested as WELFARE_FLEET__*; docs/fleet.md explains them).

    A device is offline after `missed_heartbeats` of its own heartbeat intervals plus `slack_s`
    without a word (or when its last will arrives), and online again at its next heartbeat.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How often the monitor derives offline devices and alerts (0: never, for tests that call
    # it explicitly). Requests only ever read what it wrote.
    check_interval_s: float = Field(default=5.0, ge=0, le=3600)
    missed_heartbeats: int = Field(default=3, ge=2, le=100)
    slack_s: float = Field(default=15.0, ge=0, le=3600)
    # The interval assumed for a device whose heartbeat does not say (contract 1.0 kiosks).
    default_heartbeat_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    heartbeat_retention_days: int = Field(default=30, ge=1, le=3650)
    offline_alert_after_s: float = Field(default=600.0, ge=0)
    backlog_alert_after_s: float = Field(default=1800.0, ge=0)
    clock_alert_s: float = Field(default=60.0, gt=0)
    disk_alert_free_mb: float = Field(default=500.0, ge=0)
    disk_alert_free_pct: float = Field(default=5.0, ge=0, le=100)
    # Days of offline taps the device's free disk holds (its heartbeat's storage_days_left).
    disk_alert_days: float = Field(default=14.0, ge=0)
    roster_alert_after_s: float = Field(default=600.0, ge=0)


class SecuritySettings(BaseModel):
    """Sessions, lockout and the abnormal-use alerts (nested as WELFARE_SECURITY__*)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A session ends after this long without a request, and in any case after max_hours.
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_hours: float = Field(default=12, gt=0, le=24 * 7)
    # After `lockout_after` failed sign-ins in a row an account name waits lockout_base_s,
    # doubling with every further failure up to lockout_max_s (names that exist or not alike).
    lockout_after: int = Field(default=5, ge=1, le=100)
    lockout_base_s: int = Field(default=60, ge=1)
    lockout_max_s: int = Field(default=3600, ge=1)
    # Abnormal use: more member records than this read by one account within an hour, or a
    # download outside working hours (facility time, Monday to Friday).
    alert_member_reads_per_hour: int = Field(default=50, ge=1)
    work_start_hour: int = Field(default=8, ge=0, le=23)
    work_end_hour: int = Field(default=19, ge=1, le=24)
    # Audit partitions ahead, retention and alerts run this often in the service (0: never).
    maintenance_interval_s: float = Field(default=600, ge=0)


class FollowupSettings(BaseModel):
    """Follow-up work of the staff pages (nested as WELFARE_FOLLOWUP__*; docs/staff.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A member goes on a program's absence list after this many of the program's service days
    # without attendance, unless the program sets its own (programs.absence_days).
    absence_days: int = Field(default=5, ge=1, le=365)
    # How far back service days are counted (a member absent longer shows this many, "+").
    absence_lookback_days: int = Field(default=180, ge=7, le=3650)
    # Unanswered calls (since the member was last seen) that flag the member to the manager.
    unanswered_calls_flag: int = Field(default=3, ge=1, le=20)
    # How often the meal hall page and the absence list poll the server.
    meal_hall_refresh_s: int = Field(default=5, ge=1, le=600)
    absence_refresh_s: int = Field(default=60, ge=5, le=3600)


class Settings(BaseSettings):
    """Where the database and broker are, the hashing key, and how the consumer batches."""

    model_config = SettingsConfigDict(
        env_prefix="WELFARE_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        min_length=1, validation_alias=AliasChoices("DATABASE_URL", "WELFARE_DATABASE_URL")
    )
    # The schema owner's URL: migrations and the audit retention run with it, the service never
    # does (it works as the `welfare_app` role). Default: DATABASE_URL (a development setup).
    migration_url: str | None = Field(default=None, min_length=1)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    # Registering members and cards hashes their identifiers with it; without it the registry
    # refuses those writes (there is deliberately no default key).
    credential_key: CredentialKey | None = None
    # Phone, birth date, needs and second-factor secrets are encrypted with it (AES-GCM); the
    # previous keys are still read during a rotation (`welfare keys rotate`). No default.
    data_key: DataKey | None = None
    data_key_previous: list[DataKey] = Field(default_factory=list)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
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
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    followup: FollowupSettings = Field(default_factory=FollowupSettings)

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
                    ("WELFARE_DATA_KEY", self.data_key),
                    ("WELFARE_MIGRATION_URL", self.migration_url),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}")
            if self.migration_url == self.database_url:
                raise ValueError("production: the service must not connect as the schema owner")
        if self.security.work_end_hour <= self.security.work_start_hour:
            raise ValueError("security.work_end_hour must be after work_start_hour")
        return self

    @property
    def owner_url(self) -> str:
        """The URL migrations and the audit retention run with."""
        return self.migration_url or self.database_url
