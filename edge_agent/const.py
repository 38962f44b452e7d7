"""Constants of the edge agent."""

from typing import Final

# Publish at most this many events per MQTT message; a backlog drains in full batches.
PUBLISH_BATCH: Final = 200
# Events sent but not yet confirmed; past this the publisher waits for acks before sending more.
MAX_IN_FLIGHT: Final = 4000
# Confirmed events are kept this long for staff look-ups, then pruned.
KEEP_CONFIRMED_DAYS: Final = 7
RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 30
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
