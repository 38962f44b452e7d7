"""Constants of the wire contract and the shared vocabulary."""

from importlib import metadata
from typing import Final

SCHEMA_VERSION: Final = 1
TOPIC_ROOT: Final = "welfare/v1"
# A facility, device or program id travels in topics, so it must not contain MQTT wildcards
# or '/'. The registry, the database's CHECK constraints and every message use this one rule.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
# Member references (and visitor and contact codes, which stand where a member would).
MEMBER_REF_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
# A personal ID code issued to a one-off visitor: V-<facility>-<device>-<yyyymmdd>-<nnnn>, unique
# across the city because each device numbers its own (contract 1.5); V-<facility>-<yyyymmdd>-
# <nnnn>, without the device, is what kiosks issued before and still valid.
VISITOR_CODE_PATTERN: Final = (
    r"^V-[A-Za-z0-9]{1,32}(-[A-Za-z0-9][A-Za-z0-9_-]{0,31})?-[0-9]{8}-[0-9]{4}$"
)
MAX_BATCH_EVENTS: Final = 500
# The ingest refuses anything larger before parsing it (a batch of 500 events is ~150 kB).
MAX_PAYLOAD_BYTES: Final = 256 * 1024
INGEST_SHARE_GROUP: Final = "ingest"
QOS_AT_LEAST_ONCE: Final = 1
# Every facility of the city keeps Korean time; a roster or a center setting may name another.
DEFAULT_TIMEZONE: Final = "Asia/Seoul"
# Keyed hashes (card UIDs, person identities) need a key of at least this many bytes.
MIN_KEY_BYTES: Final = 16


def _software_version() -> str:
    """The installed package's version, as devices report it in their health."""
    try:
        return metadata.version("smart-welfare")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


SOFTWARE_VERSION: Final = _software_version()
