"""Constants of the wire contract."""

from typing import Final

SCHEMA_VERSION: Final = 1
TOPIC_ROOT: Final = "welfare/v1"
# A facility or device id travels in topics, so it must not contain MQTT wildcards or '/'.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
MAX_BATCH_EVENTS: Final = 500
# The ingest refuses anything larger before parsing it (a batch of 500 events is ~150 kB).
MAX_PAYLOAD_BYTES: Final = 256 * 1024
INGEST_SHARE_GROUP: Final = "ingest"
QOS_AT_LEAST_ONCE: Final = 1
