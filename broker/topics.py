"""The MQTT topic tree: welfare/v1/{facility_id}/{device_id}/{channel}."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from broker.const import ID_PATTERN, INGEST_SHARE_GROUP, TOPIC_ROOT

_ID = re.compile(ID_PATTERN)


class Channel(StrEnum):
    """What a topic carries; the direction is fixed per channel."""

    ATTENDANCE = "attendance"  # device -> center, QoS 1
    HEALTH = "health"  # device -> center, QoS 1
    PRESENCE = "presence"  # device -> center, QoS 1, retained: online / offline (last will)
    SYNC = "sync"  # device -> center, QoS 1: the roster version held; answered when behind
    ACK = "ack"  # center -> device, QoS 1: event ids whose rows are committed
    ROSTER = "roster"  # center -> device, QoS 1: a whole roster or a delta (docs/contract.md)
    CONFIG = "config"  # center -> device, QoS 1, retained
    # device -> the other devices of its facility, QoS 1, on the center broker only (never
    # bridged to the city): what a kiosk served, so the hall decides as one (docs/kiosk.md).
    PEER = "peer"


UPSTREAM = (Channel.ATTENDANCE, Channel.HEALTH, Channel.PRESENCE, Channel.SYNC)
DOWNSTREAM = (Channel.ACK, Channel.ROSTER, Channel.CONFIG)


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """A parsed topic: who it is about and what it carries."""

    facility_id: str
    device_id: str
    channel: Channel


def validate_id(value: str, *, what: str) -> str:
    """Return `value` if it is a valid facility/device id, else raise ValueError."""
    if not _ID.match(value):
        raise ValueError(f"invalid {what} id {value!r}: use 1-32 letters, digits, '-' or '_'")
    return value


def topic(facility_id: str, device_id: str, channel: Channel) -> str:
    """Build the topic of one device's channel."""
    validate_id(facility_id, what="facility")
    validate_id(device_id, what="device")
    return f"{TOPIC_ROOT}/{facility_id}/{device_id}/{channel.value}"


def parse_topic(value: str) -> TopicAddress:
    """Parse a concrete topic into its address, or raise ValueError."""
    parts = value.split("/")
    root = TOPIC_ROOT.split("/")
    if len(parts) != len(root) + 3 or parts[: len(root)] != root:
        raise ValueError(f"topic {value!r} is not under {TOPIC_ROOT}/<facility>/<device>/<channel>")
    facility_id, device_id, channel = parts[len(root) :]
    try:
        parsed_channel = Channel(channel)
    except ValueError:
        raise ValueError(f"unknown channel {channel!r} in topic {value!r}") from None
    return TopicAddress(
        validate_id(facility_id, what="facility"),
        validate_id(device_id, what="device"),
        parsed_channel,
    )


def ingest_subscription(channel: Channel, *, shared: bool = True) -> str:
    """Subscription filter of the ingest for one upstream channel (an MQTT v5 shared one)."""
    filt = f"{TOPIC_ROOT}/+/+/{channel.value}"
    return f"$share/{INGEST_SHARE_GROUP}/{filt}" if shared else filt


def peer_subscription(facility_id: str) -> str:
    """Subscription filter of a kiosk for its facility's peer messages (its own included)."""
    validate_id(facility_id, what="facility")
    return f"{TOPIC_ROOT}/{facility_id}/+/{Channel.PEER.value}"
