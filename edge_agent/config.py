"""Settings of one kiosk's edge agent: the one settings class of the `welfare edge` process.

Environment (or a TOML file and a secrets directory, see below): WELFARE_FACILITY_ID,
WELFARE_DEVICE_ID, WELFARE_CREDENTIAL_KEY (the same name as
at the center), WELFARE_DATABASE, WELFARE_MQTT__HOST/__PORT/__USERNAME/__PASSWORD/__KEEPALIVE
(broker/config.py; no WELFARE_MQTT__* at all runs stand-alone), the drivers'
WELFARE_HARDWARE__* (hardware/config.py), and WELFARE_FACILITY_NAME, WELFARE_TIMEZONE,
WELFARE_NAME_DISPLAY, WELFARE_RESEND_AFTER_S, WELFARE_HEALTH_INTERVAL_S, WELFARE_WILL_DELAY_S,
WELFARE_METRICS_HOST, WELFARE_METRICS_PORT, WELFARE_LINK_SOCKET.
The kiosk UI is another process with its own settings (kiosk_app/settings.py, WELFARE_KIOSK_*).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from broker.config import CredentialKey, MqttSettings, Timezone
from broker.const import DEFAULT_TIMEZONE
from broker.vocabulary import EntityId, NameDisplay
from hardware.config import HardwareSettings

# On a provisioned kiosk (docs/provisioning.md) the settings are a TOML file and the secrets
# files in a directory (systemd's LoadCredential= puts them in $CREDENTIALS_DIRECTORY, readable
# by the service alone); the environment still wins over both.
CONFIG_FILE_ENV = "WELFARE_CONFIG_FILE"
SECRETS_DIR_ENVS = ("CREDENTIALS_DIRECTORY", "WELFARE_SECRETS_DIR")


class EdgeSettings(BaseSettings):
    """Everything one edge agent needs; the credential key is provisioned, never committed."""

    model_config = SettingsConfigDict(
        env_prefix="WELFARE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, the environment, then $WELFARE_CONFIG_FILE, then the secrets directory."""
        config = os.environ.get(CONFIG_FILE_ENV)
        secrets = next((os.environ[e] for e in SECRETS_DIR_ENVS if os.environ.get(e)), None)
        files = _file_sources(
            settings_cls,
            file_secret_settings,
            config_file=Path(config) if config else None,
            secrets_dir=Path(secrets) if secrets else None,
        )
        return (init_settings, env_settings, *files)

    facility_id: EntityId
    device_id: EntityId
    facility_name: str = "복지관"
    database: Path = Path("edge.sqlite3")
    credential_key: CredentialKey
    timezone: Timezone = DEFAULT_TIMEZONE
    name_display: NameDisplay = NameDisplay.MASKED
    resend_after_s: float = Field(default=30.0, gt=0)
    health_interval_s: float = Field(default=60.0, gt=0)
    # Confirmed events stay on the device this long (WELFARE_KEEP_CONFIRMED_DAYS), so the center
    # can ask for them again after restoring its database (docs/reliability.md); then pruned.
    keep_confirmed_days: float = Field(default=14.0, ge=0, le=366)
    # Room always left free on the database's file system: below it the device frees the
    # events the center confirmed, and only then refuses taps (docs/contract.md, the disk).
    storage_reserve_mb: float = Field(default=64.0, ge=0)
    # The broker publishes this device's last will ("offline") only if it has not reconnected
    # within this many seconds (MQTT 5 Will Delay Interval): a brief drop announces nothing.
    will_delay_s: int = Field(default=60, ge=0, le=86_400)
    # `welfare edge run` serves Prometheus metrics here (localhost only); None: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=9101, ge=1, le=65535)
    # Until the center's configuration says otherwise: how often the roster held is reported.
    sync_interval_s: float = Field(default=300.0, gt=0)
    mqtt: MqttSettings | None = None
    # Where the kiosk UI connects (edge_agent/link.py); None runs headless (reader + buzzer).
    link_socket: Path | None = Path("/run/welfare/edge-link.sock")
    hardware: HardwareSettings = Field(default_factory=HardwareSettings)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_off(cls, value: object) -> object:
        """WELFARE_METRICS_PORT=off (or empty) serves no metrics."""
        if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
            return None
        return value


def _file_sources(
    settings_cls: type[BaseSettings],
    file_secret_settings: PydanticBaseSettingsSource,
    *,
    config_file: Path | None,
    secrets_dir: Path | None,
) -> list[PydanticBaseSettingsSource]:
    """The TOML settings file and the secrets directory (one file per secret), when given."""
    sources: list[PydanticBaseSettingsSource] = []
    if config_file is not None:
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
    if secrets_dir is not None:
        sources.append(
            NestedSecretsSettingsSource(
                file_secret_settings,
                secrets_dir=secrets_dir,
                secrets_dir_missing="error",
                secrets_nested_delimiter="__",  # welfare_mqtt__password -> mqtt.password
            )
        )
    return sources


def load_bundle(
    config_file: Path, secrets_dir: Path, *, ca_file: Path | None = None
) -> EdgeSettings:
    """The settings a kiosk gets from exactly these files (the environment ignored).

    `ca_file` stands in for the CA path the TOML names on the kiosk, so a bundle is checked
    where it was made, before it is copied to the device.
    """

    class Bundle(EdgeSettings):
        """EdgeSettings from the bundle's files only."""

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            """Overrides, the TOML file, the secrets directory."""
            files = _file_sources(
                settings_cls, file_secret_settings, config_file=config_file, secrets_dir=secrets_dir
            )
            return (init_settings, *files)

    overrides = {"mqtt": {"ca_file": ca_file}} if ca_file is not None else {}
    return Bundle(**overrides)  # type: ignore[arg-type]
