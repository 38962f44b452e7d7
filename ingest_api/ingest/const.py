"""Constants of the ingest: tolerances, acknowledgement, sessions, dead-letter reasons."""

from datetime import timedelta
from typing import Final

# Events stamped further ahead of the server's clock than this are kept but flagged.
FUTURE_TOLERANCE: Final = timedelta(minutes=5)
# A kiosk may be offline for weeks; older than this is kept but flagged for staff review.
PAST_TOLERANCE: Final = timedelta(days=62)
ACK_CHUNK: Final = 1000
# Short on purpose: Mosquitto keeps queueing a shared subscription's share for an offline
# consumer until its session expires, so a consumer that died for good would hold back part
# of the stream. A restart within this window gets its unacknowledged messages redelivered;
# after it the devices' resends (end-to-end acks) bring the events in through the others.
SESSION_EXPIRY_S: Final = 120
# Flag of an event decided with a roster version the center never issued to its device.
ROSTER_UNKNOWN: Final = "roster_unknown"


class DeadLetterReason:
    """Why a message went to the dead-letter table."""

    OVERSIZE: Final = "oversize"
    BAD_TOPIC: Final = "bad_topic"
    INVALID_JSON: Final = "invalid_json"
    UNKNOWN_SCHEMA_VERSION: Final = "unknown_schema_version"
    INVALID: Final = "invalid_message"
    TOPIC_MISMATCH: Final = "topic_mismatch"
    DB_REJECTED: Final = "db_rejected"
