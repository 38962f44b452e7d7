"""Settings of the registry: the key of the keyed hashes (environment, never committed)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from welfare.hashing import MIN_KEY_BYTES


class RegistrySettings(BaseSettings):
    """WELFARE_CREDENTIAL_KEY: the HMAC key for card/NFC identifiers and person matching."""

    model_config = SettingsConfigDict(env_prefix="WELFARE_", extra="ignore")

    credential_key: SecretStr | None = None

    def key(self) -> bytes:
        """The key as bytes; refuses to run without one of a safe length."""
        raw = self.credential_key.get_secret_value().encode() if self.credential_key else b""
        if len(raw) < MIN_KEY_BYTES:
            raise RuntimeError(
                f"set WELFARE_CREDENTIAL_KEY ({MIN_KEY_BYTES}+ bytes) to hash card identifiers"
            )
        return raw
