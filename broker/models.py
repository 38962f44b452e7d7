"""Pydantic v2 models of every message on the wire; each carries `schema_version`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Annotated, Literal
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
    RejectReason,
    SyncReason,
    VisitorCode,
)

# Lowercase hex SHA-256 / HMAC-SHA256 (content hashes, signatures) and short key ids.
HEX64 = r"^[0-9a-f]{64}$"
KEY_ID = r"^[0-9a-f]{16}$"
Signatures = list[Annotated[str, Field(pattern=HEX64)]]
KeyIds = list[Annotated[str, Field(pattern=KEY_ID)]]


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
    # Contract 1.5: why staff let a member in despite the rule (e.g. already served).
    override_reason: str | None = Field(default=None, min_length=1, max_length=80)

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
    # Face match (docs/face.md): templates the kiosk can match, and the members whose sealed
    # template did not open here (dropped, never used; re-enrol or check the facility key).
    face_templates: int | None = Field(default=None, ge=0)
    face_unreadable: list[MemberRef] | None = Field(default=None, max_length=100)
    # Added in contract revision 1.4: optional, so a 1.3 kiosk's heartbeat still validates.
    outbox_parked: int | None = Field(
        default=None, ge=0, description="Events the center refused for good, kept on the device."
    )
    storage_days_left: float | None = Field(
        default=None,
        ge=0,
        description="Days of offline taps the free disk (above the reserve) holds at a busy day.",
    )
    # Contract 1.5: seats left in each meal sitting on now (the hall's serves counted).
    seats_left: dict[EntityId, int] | None = None


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


class RejectedEvent(_Message):
    """One event the center refused for good, with the reason; the device parks it."""

    event_id: UUID
    reason: RejectReason
    detail: str = Field(max_length=300)


class IngestAck(_Message):
    """Payload on .../ack: these events are committed in the central database, or refused.

    Contract 1.4 added `rejected`. The center sends the two in separate messages, and an ack of
    committed events is byte for byte what a 1.2 center sent (no `rejected` key), so an older
    kiosk still confirms what was stored and merely ignores the refusals it cannot read.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    committed: list[UUID] = Field(default_factory=list)
    acked_at: AwareDatetime
    rejected: list[RejectedEvent] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> IngestAck:
        """An ack confirms or refuses at least one event."""
        if not self.committed and not self.rejected:
            raise ValueError("an ack names at least one committed or rejected event")
        return self


class ProgramSession(_Message):
    """A program a kiosk serves with one weekly time window, in facility local time.

    A program held at different times on different days appears once per time window.
    """

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


class Sitting(_Message):
    """One dated session of a program (closures already applied by the center), local time."""

    program_id: EntityId
    on: date
    starts: time
    ends: time
    place: str | None = Field(default=None, max_length=80)
    capacity: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Sitting:
        """A sitting ends after it starts."""
        if self.ends <= self.starts:
            raise ValueError("ends must be after starts")
        return self


class FaceTemplate(_Message):
    """A member's face template, sealed under the facility's face key (broker/face.py).

    `key_id` names the facility credential key it was derived from; `sealed` is base64. The
    center never opens it; a kiosk that cannot open it drops it and says so in its health.
    """

    key_id: str = Field(pattern=KEY_ID)
    sealed: str = Field(min_length=1, max_length=2_000)


class RosterMember(_Message):
    """Who may check in here: pseudonymous ref, names for display, hashed credentials."""

    member_ref: MemberRef
    display_name: str = Field(min_length=1, max_length=40)
    status: MemberStatus = MemberStatus.ACTIVE
    credential_hashes: list[CredentialHash] = Field(default_factory=list)
    program_ids: list[EntityId] = Field(default_factory=list)
    # Only for an active member with a recorded face consent and an enrolled template.
    face_template: FaceTemplate | None = None


class Roster(_Message):
    """Payload on .../roster: a device's whole roster, or a delta from a version it holds.

    A whole roster (`base_version` unset) replaces the last. A delta names the version it
    applies to; its `members` are the members added or changed, `removed` the members gone;
    `programs` and `sittings` are always whole. `content_hash` is the hash of the roster the
    device holds after applying it (broker/roster.py), `signatures` HMACs under the facility's
    credential keys: a device applies an update only if both check, else keeps the last good.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    version: str = Field(min_length=1, max_length=64)
    issued_at: AwareDatetime
    timezone: str = DEFAULT_TIMEZONE
    programs: list[ProgramSession]
    members: list[RosterMember]
    base_version: str | None = Field(default=None, min_length=1, max_length=64)
    removed: list[MemberRef] | None = None
    # The sittings of today and the coming week; a day after `sittings_until` falls back to
    # the weekly pattern of `programs` (a kiosk offline for longer never stops deciding).
    sittings: list[Sitting] | None = None
    sittings_until: date | None = None
    content_hash: str | None = Field(default=None, pattern=HEX64)
    signatures: Signatures | None = Field(default=None, max_length=4)

    @model_validator(mode="after")
    def _consistent(self) -> Roster:
        """Removals only in a delta; sittings with the last day they cover."""
        if self.removed is not None and self.base_version is None:
            raise ValueError("removed is only allowed in a delta (with base_version)")
        if (self.sittings is None) != (self.sittings_until is None):
            raise ValueError("sittings and sittings_until go together")
        until = self.sittings_until
        if self.sittings and until is not None and any(s.on > until for s in self.sittings):
            raise ValueError("a sitting lies after sittings_until")
        return self

    @property
    def is_delta(self) -> bool:
        """Whether this update applies to a version the device holds."""
        return self.base_version is not None


class WrappedKey(_Message):
    """A facility credential key, encrypted (AES-GCM) under another key the device holds."""

    key_id: str = Field(pattern=KEY_ID)
    wrapped_with: str = Field(pattern=KEY_ID)
    nonce: str = Field(min_length=16, max_length=24, description="Base64, 12 bytes.")
    ciphertext: str = Field(min_length=16, max_length=200, description="Base64.")


class TicketNumbering(_Message):
    """How one kiosk numbers the tickets of a sitting so the hall's kiosks never repeat one
    without asking the center: first, first+step, first+2*step, … The center gives each kiosk
    of a facility its own `first` (1..n) and `step` n (an interleaved sequence), or a block
    (first 1, 501, …; step 1)."""

    first: int = Field(default=1, ge=1, le=99_999)
    step: int = Field(default=1, ge=1, le=1000)

    def number(self, nth: int) -> int:
        """The `nth` (1-based) ticket this kiosk issues in a sitting."""
        return self.first + self.step * (nth - 1)


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
    # Set by the center's fleet sync: the facility's credential keys in use (ids), the newest
    # wrapped under an older one during a rotation, and HMACs under those keys.
    version: str | None = Field(default=None, max_length=64)
    sync_interval_s: float = Field(default=300, ge=10, le=86_400)
    key_ids: KeyIds | None = Field(default=None, max_length=4)
    wrapped_keys: list[WrappedKey] | None = Field(default=None, max_length=4)
    signatures: Signatures | None = Field(default=None, max_length=4)
    # Contract 1.4, after the center restored its database: "send again every event you had
    # confirmed since `replay_since`" (center clock). Obeyed once per `replay_id`, and only in
    # a configuration signed under a key the device holds. Present only while a replay is
    # asked for, so a 1.3 kiosk is otherwise sent what it reads.
    replay_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,64}$")
    replay_since: AwareDatetime | None = None

    @model_validator(mode="after")
    def _replay_whole(self) -> DeviceConfig:
        """A replay request has both its id and its time."""
        if (self.replay_id is None) != (self.replay_since is None):
            raise ValueError("replay_id and replay_since go together")
        return self

    # Contract 1.5: this kiosk's ticket numbers within a sitting (unset: 1, 2, 3, …).
    tickets: TicketNumbering | None = None
    # Contract 1.5: the program one-off visitors registered here count under.
    visitor_program_id: EntityId | None = None


class SyncRequest(_Message):
    """Payload on .../sync: what a device holds; the center answers when it is behind."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    sent_at: AwareDatetime
    reason: SyncReason
    roster_version: str | None = Field(default=None, max_length=64)
    roster_hash: str | None = Field(default=None, pattern=HEX64)
    config_version: str | None = Field(default=None, max_length=64)
    key_ids: KeyIds = Field(default_factory=list, max_length=8)
    detail: str | None = Field(default=None, max_length=200)


class PeerServe(_Message):
    """Payload on .../peer: a kiosk served (or checked in) a member; the facility's other kiosks
    enter it in their served log, so one member gets one meal per sitting whichever kiosk
    they tap. No time in it decides anything: kiosk clocks need not agree."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    event_id: UUID
    program_id: EntityId
    member_ref: MemberRef
    service_date: date
    ticket_no: int | None = Field(default=None, ge=1, le=99_999)
    sitting: time | None = Field(default=None, description="Start of the sitting (local time).")


DOWNSTREAM_MODELS: dict[str, type[_Message]] = {
    "ack": IngestAck,
    "roster": Roster,
    "config": DeviceConfig,
}
UPSTREAM_MODELS: dict[str, type[_Message]] = {
    "attendance": AttendanceBatch,
    "health": DeviceHealth,
    "presence": DevicePresence,
    "sync": SyncRequest,
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
