"""Pydantic v2 models of every message on the wire; each carries `schema_version`."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.const import ID_PATTERN, MAX_BATCH_EVENTS, SCHEMA_VERSION
from welfare.ids import truncate_ms, uuid7_time

EntityId = Annotated[str, Field(pattern=ID_PATTERN)]
# Members are referred to by a pseudonymous id from the registry, never by name or card.
MemberRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
CredentialHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Message(BaseModel):
    """Base of wire messages: strict about unknown fields so typos are caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Method(StrEnum):
    """How the member identified at the kiosk."""

    CARD = "card"
    NFC = "nfc"
    FACE = "face"
    STAFF = "staff"  # staff override or manual check-in


class Outcome(StrEnum):
    """What the kiosk decided; only `accepted` counts in the figures."""

    ACCEPTED = "accepted"
    ALREADY_SERVED = "already_served"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    INACTIVE_MEMBER = "inactive_member"
    NOT_ENROLLED = "not_enrolled"
    NO_SERVICE = "no_service"


class MemberStatus(StrEnum):
    """A member's standing; only active members are let in."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"


class ProgramKind(StrEnum):
    """Kinds of sessions a kiosk serves."""

    MEAL = "meal"  # one meal per member per service, numbered tickets
    CLASS = "class"  # one check-in per member per session


class Gender(StrEnum):
    """Gender as the centers' forms count it (남/여)."""

    MALE = "M"
    FEMALE = "F"


AGE_BANDS = (
    "0-9",
    "10-19",
    "20-29",
    "30-39",
    "40-49",
    "50-59",
    "60-64",
    "65-69",
    "70-74",
    "75-79",
    "80-84",
    "85+",
)


class VisitorInfo(_Message):
    """A one-off visitor's only data: an issued ID code, gender, age band, neighbourhood."""

    visitor_code: str = Field(pattern=r"^V-[A-Za-z0-9]{1,32}-[0-9]{8}-[0-9]{4}$")
    gender: Gender
    age_band: str
    neighbourhood: str = Field(min_length=1, max_length=40)
    purpose: str = Field(min_length=1, max_length=80)

    @field_validator("age_band")
    @classmethod
    def _known_band(cls, value: str) -> str:
        """Only the agreed age bands, so figures can be grouped."""
        if value not in AGE_BANDS:
            raise ValueError(f"age_band must be one of {', '.join(AGE_BANDS)}")
        return value


class AttendanceEvent(_Message):
    """One decision at a kiosk. The id is a UUIDv7 whose timestamp *is* `occurred_at`."""

    event_id: UUID
    occurred_at: AwareDatetime
    service_date: date = Field(description="Local date at the facility (Asia/Seoul).")
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


class AttendanceBatch(_Message):
    """Payload on .../attendance: one or more events of one device, oldest first."""

    schema_version: Literal[1] = SCHEMA_VERSION
    facility_id: EntityId
    device_id: EntityId
    sent_at: AwareDatetime
    events: list[AttendanceEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


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
    timezone: str = "Asia/Seoul"
    programs: list[ProgramSession]
    members: list[RosterMember]


class NameDisplay(StrEnum):
    """How the kiosk shows a member's name on success."""

    FULL = "full"
    MASKED = "masked"  # 김*수


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
