"""Turns raw MQTT messages into rows to store, or dead letters with a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID

from pydantic import ValidationError

from broker.const import MAX_BATCH_EVENTS, MAX_PAYLOAD_BYTES, SCHEMA_VERSION
from broker.models import (
    AttendanceBatch,
    AttendanceEvent,
    BatchHeader,
    DeviceHealth,
    DevicePresence,
    SyncRequest,
)
from broker.topics import Channel, TopicAddress, parse_topic
from broker.vocabulary import RejectReason
from ingest_api.ingest.const import FUTURE_TOLERANCE, PAST_TOLERANCE, DeadLetterReason


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that cannot be stored as data."""

    topic: str
    reason: str
    detail: str
    payload: bytes
    event_id: UUID | None = None  # the one event refused, when the rest of its batch was stored


@dataclass(frozen=True, slots=True)
class EventRow:
    """One attendance event, ready for the database."""

    event_id: UUID
    occurred_at: datetime
    facility_id: str
    device_id: str
    service_date: date
    program_id: str | None
    member_ref: str | None
    method: str
    outcome: str
    ticket_no: int | None
    roster_version: str | None
    visitor: str | None
    flags: list[str] = field(default_factory=list)
    override_reason: str | None = None  # contract 1.5: why staff let the member in


@dataclass(frozen=True, slots=True)
class RefusedEvent:
    """One event of a batch refused for good: its device is told and parks it."""

    event_id: UUID
    reason: RejectReason
    detail: str
    payload: bytes  # the event alone, as sent (or as the ingest read it), for the dead letter


@dataclass(frozen=True, slots=True)
class ParsedAttendance:
    """An attendance batch: its valid events as rows, and the events refused one by one."""

    facility_id: str
    device_id: str
    rows: list[EventRow]
    refused: list[RefusedEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ParsedHealth:
    """A valid health report (a heartbeat), with the time the ingest received it."""

    health: DeviceHealth
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ParsedPresence:
    """A device's online/offline announcement (or its last will), with the time it arrived."""

    presence: DevicePresence
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ParsedSync:
    """A valid report of the roster a device holds."""

    request: SyncRequest


Parsed = ParsedAttendance | ParsedHealth | ParsedPresence | ParsedSync | DeadLetter


def parse_message(topic: str, payload: bytes, *, received_at: datetime) -> Parsed:
    """Validate one message against the contract; never raises for bad input."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return DeadLetter(
            topic, DeadLetterReason.OVERSIZE, f"{len(payload)} > {MAX_PAYLOAD_BYTES} bytes", payload
        )
    try:
        address = parse_topic(topic)
    except ValueError as exc:
        return DeadLetter(topic, DeadLetterReason.BAD_TOPIC, str(exc), payload)
    if address.channel is Channel.ATTENDANCE:
        # Fast path for the common case: pydantic parses and validates the bytes in one pass.
        # Anything it refuses goes the slow way below, which names the precise reason.
        try:
            fast = AttendanceBatch.model_validate_json(payload)
        except ValueError:
            pass
        else:
            return _attendance(
                topic, payload, fast, address.facility_id, address.device_id, received_at
            )
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return DeadLetter(topic, DeadLetterReason.INVALID_JSON, str(exc)[:500], payload)
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        return DeadLetter(
            topic,
            DeadLetterReason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {version!r}, this service reads {SCHEMA_VERSION}",
            payload,
        )
    if address.channel is Channel.ATTENDANCE and isinstance(document, dict):
        return _attendance_per_event(topic, payload, document, address, received_at)
    try:
        if address.channel is Channel.ATTENDANCE:
            batch = AttendanceBatch.model_validate(document)
        elif address.channel is Channel.HEALTH:
            health = DeviceHealth.model_validate(document)
        elif address.channel is Channel.PRESENCE:
            presence = DevicePresence.model_validate(document)
        elif address.channel is Channel.SYNC:
            sync = SyncRequest.model_validate(document)
        else:
            return DeadLetter(topic, DeadLetterReason.BAD_TOPIC, "not an upstream channel", payload)
    except ValidationError as exc:
        return DeadLetter(topic, DeadLetterReason.INVALID, _short(exc), payload)
    if address.channel is Channel.ATTENDANCE:
        return _attendance(
            topic, payload, batch, address.facility_id, address.device_id, received_at
        )
    if address.channel is Channel.SYNC:
        if (sync.facility_id, sync.device_id) != (address.facility_id, address.device_id):
            return DeadLetter(
                topic, DeadLetterReason.TOPIC_MISMATCH, "sync request of another device", payload
            )
        return ParsedSync(sync)
    about = health if address.channel is Channel.HEALTH else presence
    if (about.facility_id, about.device_id) != (address.facility_id, address.device_id):
        return DeadLetter(
            topic,
            DeadLetterReason.TOPIC_MISMATCH,
            f"{address.channel.value} of {about.facility_id}/{about.device_id}, "
            f"topic is {address.facility_id}/{address.device_id}",
            payload,
        )
    if address.channel is Channel.HEALTH:
        return ParsedHealth(health, received_at)
    return ParsedPresence(presence, received_at)


def _attendance(
    topic: str,
    payload: bytes,
    batch: AttendanceBatch,
    facility_id: str,
    device_id: str,
    received_at: datetime,
) -> ParsedAttendance | DeadLetter:
    """Rows of a valid batch, unless it speaks for another device than its topic."""
    if (batch.facility_id, batch.device_id) != (facility_id, device_id):
        # A device speaking for another one (should the broker's ACL ever let it through).
        return DeadLetter(
            topic,
            DeadLetterReason.TOPIC_MISMATCH,
            f"payload is {batch.facility_id}/{batch.device_id}, topic is {facility_id}/{device_id}",
            payload,
        )
    rows = [
        EventRow(
            event_id=e.event_id,
            occurred_at=e.occurred_at,
            facility_id=batch.facility_id,
            device_id=batch.device_id,
            service_date=e.service_date,
            program_id=e.program_id,
            member_ref=e.member_ref,
            method=e.method.value,
            outcome=e.outcome.value,
            ticket_no=e.ticket_no,
            roster_version=e.roster_version,
            visitor=e.visitor.model_dump_json() if e.visitor else None,
            flags=_time_flags(e.occurred_at, received_at),
            override_reason=e.override_reason,
        )
        for e in batch.events
    ]
    return ParsedAttendance(batch.facility_id, batch.device_id, rows)


def _attendance_per_event(
    topic: str,
    payload: bytes,
    document: dict[str, object],
    address: TopicAddress,
    received_at: datetime,
) -> ParsedAttendance | DeadLetter:
    """A batch that failed as a whole: its envelope must hold, then each event stands alone.

    One event the center refuses (a newer kiosk's field, a value out of range) must not hold
    back the valid events sent with it. An event without a readable id cannot be refused to
    its device by name, so its batch stays a dead letter as before (the device resends it).
    """
    events = document.get("events")
    header = {k: v for k, v in document.items() if k != "events"}
    try:
        parsed_header = BatchHeader.model_validate(header)
    except ValidationError as exc:
        return DeadLetter(topic, DeadLetterReason.INVALID, _short(exc), payload)
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH_EVENTS:
        return DeadLetter(
            topic,
            DeadLetterReason.INVALID,
            f"events: a list of 1 to {MAX_BATCH_EVENTS} events is required",
            payload,
        )
    good: list[AttendanceEvent] = []
    refused: list[RefusedEvent] = []
    for raw in events:
        try:
            good.append(AttendanceEvent.model_validate(raw))
            continue
        except ValidationError as exc:
            detail = _short(exc)
        event_id = _event_id(raw)
        if event_id is None:
            return DeadLetter(
                topic, DeadLetterReason.INVALID, f"an event without a valid id: {detail}", payload
            )
        refused.append(
            RefusedEvent(
                event_id, RejectReason.INVALID, detail, json.dumps(raw, ensure_ascii=False).encode()
            )
        )
    whole = AttendanceBatch.model_construct(**dict(parsed_header), events=good)
    parsed = _attendance(topic, payload, whole, address.facility_id, address.device_id, received_at)
    if isinstance(parsed, DeadLetter):
        return parsed
    return ParsedAttendance(parsed.facility_id, parsed.device_id, parsed.rows, refused)


def _event_id(raw: object) -> UUID | None:
    """The id an invalid event carries, if it is a readable UUID."""
    if not isinstance(raw, dict) or not isinstance(raw.get("event_id"), str):
        return None
    try:
        return UUID(raw["event_id"])
    except ValueError:
        return None


def _time_flags(occurred_at: datetime, received_at: datetime) -> list[str]:
    """Flag (never drop) events whose device clock looks wrong."""
    if occurred_at > received_at + FUTURE_TOLERANCE:
        return ["clock_future"]
    if occurred_at < received_at - PAST_TOLERANCE:
        return ["clock_past"]
    return []


def _short(exc: ValidationError) -> str:
    """A compact, human-readable validation error."""
    parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]]
    return "; ".join(parts)[:1000]
