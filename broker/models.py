"""Pydantic v2 models of every message on the wire; each carries `schema_version`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.const import DEFAULT_TIMEZONE, MAX_BATCH_EVENTS, SCHEMA_VERSION
from broker.ids import truncate_ms, uuid7_time
from broker.vocabulary import (
    AgeBand,
    CredentialHash,
    EntityId,
    Gender,
    MemberRef,
    MemberStatus,
    Method,
    NameDisplay,
    Outcome,
    ProgramKind,
    VisitorCode,
)


class _Message(BaseModel):
    """Base of wire messages: strict about unknown fields so typos are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class VisitorInfo(_Message):
    """A one-off visitor's only data: an issued ID code, gender, age band, neighbourhood."""

    visitor_code: VisitorCode
    gender: Gender
    age_band: AgeBand
    neighbourhood: str = Field(min_length=1, max_length=40)
    purpose: str = Field(min_length=1, max_length=80)


class AttendanceEvent(_Message):
    """One decision at a kiosk. The id is a UUIDv7 whose timestamp *is* `occurred_at`."""

    event_id: UUID
    occurred_at: AwareDatetime
    service_date: date = Field(description="Local date at the facility (its time zone).")
    program_id: EntityId | None = None
    member_ref: MemberRef | None = None
    method: Method
    outcome: Outcome
    ticket_no: int | None = Field(default=None, ge=1, le=99_999)
    roster_version: str | None = Field(default=None, max_length=64)
    visitor: VisitorInfo | None = Field(
        default=None, description="Set for a one-off visitor registered by staff."
    )

    @field_validator("occurred_at")
    @classmethod
    def _ms_precision(cls, value: datetime) -> datetime:
        """Keep the millisecond precision of the id, so a replay is byte-for-byte the same row."""
        return truncate_ms(value)

    @field_validator("event_id")
    @classmethod
    def _is_uuid7(cls, value: UUID) -> UUID:
        """Reject ids that are not time-ordered UUIDv7."""
        if value.version != 7:
            raise ValueError("event_id must be a UUIDv7")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AttendanceEvent:
        """Tie the time to the id (so the id alone identifies the row) and check the outcome."""
        if uuid7_time(self.event_id) != truncate_ms(self.occurred_at):
            raise ValueError("occurred_at must equal the timestamp inside event_id (ms precision)")
        if self.visitor is not None:
            if self.member_ref != self.visitor.visitor_code or self.method is not Method.STAFF:
                raise ValueError("a visitor's event has member_ref = visitor_code, method staff")
        elif self.outcome is Outcome.ACCEPTED and (
            self.member_ref is None or self.program_id is None
        ):
            raise ValueError("an accepted attendance needs member_ref and program_id")
        return self


class BatchHeader(_Message):
    """The envelope of an attendance batch: which device sends it, and when."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    sent_at: AwareDatetime


class AttendanceBatch(BatchHeader):
    """Payload on .../attendance: one or more events of one device, oldest first."""

    events: list[AttendanceEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


def encode_batch(header: BatchHeader, events: Sequence[str]) -> str:
    """The AttendanceBatch document of `header` and already-encoded events.

    A device stores each event as `AttendanceEvent.model_dump_json(exclude_none=True)` when it
    decides, so the publisher need not parse and re-validate a backlog of thousands to send it:
    the envelope comes from the validated header and the result is, byte for byte, what
    `AttendanceBatch(...).model_dump_json(exclude_none=True)` gives (tests/broker checks it).
    """
    if not 1 <= len(events) <= MAX_BATCH_EVENTS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events, not {len(events)}")
    head = header.model_dump_json(exclude_none=True)
    return head[:-1] + ',"events":[' + ",".join(events) + "]}"


class ReaderState(_Message):
    """State of one input or output device of a kiosk."""

    kind: Literal["card", "nfc", "camera", "printer", "buzzer"]
    connected: bool
    detail: str | None = Field(default=None, max_length=200)


class DeviceHealth(_Message):
    """Payload on .../health: what an operator needs to see of one kiosk."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    reported_at: AwareDatetime
    software_version: str = Field(max_length=32)
    uptime_s: float = Field(ge=0)
    online_since: AwareDatetime | None = None
    outbox_pending: int = Field(ge=0, description="Events not yet confirmed by the center.")
    oldest_pending_at: AwareDatetime | None = None
    roster_version: str | None = None
    readers: dict[str, ReaderState] = Field(default_factory=dict)
    disk_free_mb: float | None = Field(default=None, ge=0)
    # Added in contract revision 1.1 (docs/contract.md, "Changes"): optional, so an older
    # kiosk's heartbeat still validates.
    disk_total_mb: float | None = Field(default=None, ge=0)
    heartbeat_interval_s: float | None = Field(
        default=None, gt=0, le=86_400, description="How often this device sends its health."
    )
    last_ack_at: AwareDatetime | None = Field(
        default=None, description="acked_at of the last confirmation received (center clock)."
    )
    clock_offset_s: float | None = Field(
        default=None,
        ge=-1e9,
        le=1e9,
        description="Device clock minus the center's, from ack round trips (+: device ahead).",
    )
    cpu_temp_c: float | None = Field(default=None, ge=-60, le=200)


class DevicePresence(_Message):
    """Payload on .../presence (retained): online when a device connects, offline when it stops.

    The offline message with reason `connection_lost` is the device's MQTT last will, which the
    broker publishes only after the will delay has passed without a reconnection.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    state: Literal["online", "offline"]
    reason: Literal["connected", "shutdown", "connection_lost"]

    @model_validator(mode="after")
    def _consistent(self) -> DevicePresence:
        """Online only ever means connected; offline is a shutdown or a lost connection."""
        if (self.state == "online") != (self.reason == "connected"):
            raise ValueError("state online goes with reason connected, offline with the others")
        return self


class IngestAck(_Message):
    """Payload on .../ack: these events are committed in the central database."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    committed: list[UUID] = Field(min_length=1)
    acked_at: AwareDatetime


class ProgramSession(_Message):
    """A program a kiosk serves, with its weekly schedule in facility local time."""

    program_id: EntityId
    name: str = Field(min_length=1, max_length=80)
    kind: ProgramKind
    weekdays: list[int] = Field(description="ISO weekdays, 1 = Monday.")
    starts: time
    ends: time
    capacity: int | None = Field(default=None, ge=1)
    place: str | None = Field(default=None, max_length=80)

    @field_validator("weekdays")
    @classmethod
    def _iso_weekdays(cls, value: list[int]) -> list[int]:
        """Accept only ISO weekday numbers."""
        if not value or any(day < 1 or day > 7 for day in value):
            raise ValueError("weekdays must be ISO numbers 1..7")
        return sorted(set(value))

    @model_validator(mode="after")
    def _ordered(self) -> ProgramSession:
        """A session ends after it starts."""
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


class RosterMember(_Message):
    """Who may check in here: pseudonymous ref, names for display, hashed credentials."""

    member_ref: MemberRef
    display_name: str = Field(min_length=1, max_length=40)
    status: MemberStatus = MemberStatus.ACTIVE
    credential_hashes: list[CredentialHash] = Field(default_factory=list)
    program_ids: list[EntityId] = Field(default_factory=list)


class Roster(_Message):
    """Payload on .../roster (retained): the whole roster of one device, replacing the last."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    version: str = Field(min_length=1, max_length=64)
    issued_at: AwareDatetime
    timezone: str = DEFAULT_TIMEZONE
    programs: list[ProgramSession]
    members: list[RosterMember]


class DeviceConfig(_Message):
    """Payload on .../config (retained): settings of one kiosk."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    facility_name: str = Field(min_length=1, max_length=80)
    name_display: NameDisplay = NameDisplay.MASKED
    health_interval_s: float = Field(default=60, ge=5, le=3600)
    resend_after_s: float = Field(default=30, ge=1, le=3600)
    issued_at: AwareDatetime


DOWNSTREAM_MODELS: dict[str, type[_Message]] = {
    "ack": IngestAck,
    "roster": Roster,
    "config": DeviceConfig,
}
UPSTREAM_MODELS: dict[str, type[_Message]] = {
    "attendance": AttendanceBatch,
    "health": DeviceHealth,
    "presence": DevicePresence,
}


def mask_name(name: str) -> str:
    """Mask a Korean name the way centers print it: 김민수 -> 김*수, 이수 -> 이*."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def event_time(at: datetime) -> datetime:
    """Return the ms-precision time a new event will carry."""
    return truncate_ms(at)
