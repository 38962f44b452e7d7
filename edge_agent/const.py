"""Constants of the edge agent."""

from typing import Final

# Publish at most this many events per MQTT message; a backlog drains in full batches.
PUBLISH_BATCH: Final = 200
# Events sent but not yet confirmed; past this the publisher waits for acks before sending more.
MAX_IN_FLIGHT: Final = 4000
# A replay request resends what was confirmed this long before its time too: the device's
# clock stamps confirmations, the center's clock names the time (docs/reliability.md).
REPLAY_MARGIN_S: Final = 600
RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 30
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
# What one event takes in the device database (outbox row, its indexes, the served-today and
# ticket rows), measured on a real day of taps (tests/edge_agent/test_storage.py checks it).
EVENT_BYTES: Final = 520
# A busy kiosk's day: the largest center sees about 1,500 visitors a day. The heartbeat's
# storage estimate uses the kiosk's own last 24 hours when busier.
BUSY_DAY_EVENTS: Final = 1500
