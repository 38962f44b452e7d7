"""Pydantic models of the registry's API and imports."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from broker.vocabulary import (
    AgeBand,
    ConsentKind,
    EntityId,
    FeeType,
    Function,
    Gender,
    MemberRef,
    MemberStatus,
    NameDisplay,
    ProgramKind,
    VisitorCode,
)
from ingest_api.registry.const import CITY

Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    """Base: unknown fields are mistakes; enums stay plain values, as the database holds them."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Facility(_Model):
    """A community welfare center."""

    facility_id: EntityId
    name: str = Field(min_length=1, max_length=80)
    district: str | None = Field(default=None, max_length=40)
    # How its kiosks show a member's name; masked names are masked at the center already.
    name_display: NameDisplay = NameDisplay.MASKED


class CountingRule(_Model):
    """How a program's attendances become person-visits, cases and unique persons."""

    rule_id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    name: str = Field(min_length=1, max_length=80)
    visit_unit: Literal["member_day", "attendance", "none"]
    case_unit: Literal["session_day", "member_day", "attendance", "none"]
    counts_unique: bool
    in_figures: bool = True
    description: str = ""


class Targets(_Model):
    """Yearly targets of the three figures and of unique persons by gender (any may be unset)."""

    unique_persons: Count | None = None
    person_visits: Count | None = None
    cases: Count | None = None
    unique_persons_male: Count | None = None
    unique_persons_female: Count | None = None


class Program(_Model):
    """A program (세부프로그램) in the hierarchy function → business area → unit business."""

    program_id: EntityId
    facility_id: EntityId
    name: str = Field(min_length=1, max_length=120)
    function: Function
    business_area: str = Field(min_length=1, max_length=80)
    unit_business: str = Field(min_length=1, max_length=80)
    purpose: str = Field(default="", max_length=500)
    target_group: str = Field(default="", max_length=200)
    cycle: str = Field(default="", max_length=80)
    place: str = Field(default="", max_length=80)
    capacity: int | None = Field(default=None, ge=1)
    fee_type: FeeType
    rule_id: str = "attendance"
    active: bool = True
    # What a kiosk does at a check-in: a meal (one a day, numbered tickets) or a class.
    kind: ProgramKind = ProgramKind.CLASS
    team: str = Field(default="", max_length=40, description="팀명: the team running it.")
    manager: str = Field(default="", max_length=40, description="담당자: the person in charge.")
    indicator: str = Field(
        default="", max_length=200, description="실적 산정 지표: what one unit of the figure is."
    )
    operating_form: str = Field(
        default="", max_length=40, description="운영형태: 상시, 정기, 수시, 일회성, …"
    )
    # issue 13: after this many of the program's service days without attendance a member is
    # on the absence list for wellbeing calls (None: WELFARE_FOLLOWUP__ABSENCE_DAYS).
    absence_days: int | None = Field(
        default=None, ge=1, le=365, description="결석 안부전화 기준 (운영일 수)."
    )


class ProgramWithTargets(Program):
    """A program with its targets for one year."""

    year: int | None = None
    targets: Targets = Field(default_factory=Targets)


class NodeTarget(_Model):
    """An explicit yearly target of a hierarchy node ('facility', 'function:…', …)."""

    year: int = Field(ge=2000, le=2100)
    facility_id: EntityId | Literal["*"] = Field(
        description=f"A facility, or {CITY!r} for the city."
    )
    node: str = Field(min_length=1, max_length=300)
    targets: Targets


class Consent(_Model):
    """A consent with its dates."""

    kind: ConsentKind
    granted_on: date
    withdrawn_on: date | None = None


# No registration without these (the member signs them first): collection and use, and
# provision to the city and its research institute, without which they cannot be counted.
REQUIRED_CONSENTS: tuple[ConsentKind, ...] = (ConsentKind.PRIVACY, ConsentKind.TRANSFER)


def missing_consents(consents: list[Consent]) -> list[ConsentKind]:
    """The required consents not given (or withdrawn) in `consents`."""
    held = {c.kind for c in consents if c.withdrawn_on is None}
    return [k for k in REQUIRED_CONSENTS if k not in held]


class MemberIn(_Model):
    """A member as staff register them; card/NFC identifiers arrive raw and are hashed at once."""

    member_ref: MemberRef
    facility_id: EntityId
    display_name: str = Field(min_length=1, max_length=40)
    gender: Gender | None = None
    birth_date: date | None = None
    recipient: bool = False
    disability: bool = False
    phone: str | None = Field(default=None, pattern=r"^[0-9+\-() ]{7,20}$")
    neighbourhood: str | None = Field(default=None, max_length=40)
    main_needs: list[str] = Field(default_factory=list, max_length=10)
    status: MemberStatus = MemberStatus.ACTIVE
    consents: list[Consent] = Field(default_factory=list)
    card_uids: list[str] = Field(default_factory=list, description="Raw; stored only hashed.")
    nfc_uids: list[str] = Field(default_factory=list, description="Raw; stored only hashed.")
    programs: dict[str, FeeType | None] = Field(
        default_factory=dict, description="Enrolments: program id -> fee type override."
    )


class Member(_Model):
    """A member as the API shows them: phone and birth date masked."""

    member_ref: str
    facility_id: str
    person_id: str
    display_name: str
    gender: Gender | None
    birth_year: int | None
    recipient: bool
    disability: bool
    phone_masked: str | None
    neighbourhood: str | None
    main_needs: list[str]
    status: MemberStatus
    consents: list[Consent]
    credential_count: int
    programs: dict[str, FeeType | None]


class MemberSensitive(_Model):
    """The sensitive fields in clear, only with a reason (audited)."""

    member_ref: str
    birth_date: date | None
    phone: str | None


class StatusChange(_Model):
    """A change of a member's status (moved out and deceased leave every roster)."""

    status: MemberStatus


class VisitorIn(_Model):
    """A one-off visitor registered by staff: only ID code, gender, age band, neighbourhood."""

    visitor_code: VisitorCode
    facility_id: EntityId
    gender: Gender
    age_band: AgeBand
    neighbourhood: str = Field(min_length=1, max_length=40)
    purpose: str = Field(default="", max_length=80)


class ContactIn(_Model):
    """A resident met during community organizing."""

    contact_code: MemberRef
    facility_id: EntityId
    program_id: EntityId | None = None
    gender: Gender
    age_band: AgeBand
    neighbourhood: str = Field(min_length=1, max_length=40)
    place: str = Field(min_length=1, max_length=80)
    met_at: AwareDatetime
    needs: str = Field(default="", max_length=500)


class ImportIssue(_Model):
    """One bad cell (or row) of an imported file."""

    row: int = Field(description="Row number as the spreadsheet shows it (header = 1).")
    column: str | None = Field(description="Header of the bad cell; None for the whole row.")
    cell: str | None = Field(description="Spreadsheet cell reference, e.g. C7.")
    value: str | None
    message: str


class ImportResult(_Model):
    """What an import did, or why it did nothing."""

    kind: Literal["members", "programs", "schedule", "closures"]
    facility_id: str
    filename: str
    rows: int
    ok: bool
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[ImportIssue] = Field(default_factory=list)


# -- schedules -----------------------------------------------------------------------------

WEEKDAY_LABELS = ("월", "화", "수", "목", "금", "토", "일")


class WeeklySession(_Model):
    """One weekly session of a program in the facility's local time (ISO weekday, 1 = Mon)."""

    weekday: int = Field(ge=1, le=7)
    starts: time
    ends: time
    place: str = Field(default="", max_length=80)
    capacity: int | None = Field(default=None, ge=1, description="Per sitting.")

    @field_validator("starts", "ends")
    @classmethod
    def _local(cls, value: time) -> time:
        """A time of day in the facility's local time, never with an offset of its own."""
        if value.tzinfo is not None:
            raise ValueError("a session time is the facility's local time: give no offset")
        return value

    @model_validator(mode="after")
    def _possible(self) -> WeeklySession:
        """A session ends after it starts, on the same day."""
        if self.ends <= self.starts:
            raise ValueError(
                f"{self.label()}: ends ({self.ends:%H:%M}) must be after it starts "
                "(sessions past midnight are not supported)"
            )
        return self

    def label(self) -> str:
        """How staff read it: 화 10:00–11:30."""
        return f"{WEEKDAY_LABELS[self.weekday - 1]} {self.starts:%H:%M}–{self.ends:%H:%M}"


class Closure(_Model):
    """A day a program (or the whole facility) does not run."""

    on_date: date
    reason: str = Field(default="", max_length=120)


class ScheduleIn(_Model):
    """A program's whole schedule: it replaces the sessions and cancelled days stored."""

    sessions: list[WeeklySession] = Field(default_factory=list, max_length=50)
    exceptions: list[Closure] = Field(default_factory=list, max_length=400)


class Schedule(ScheduleIn):
    """A program's schedule as stored."""

    program_id: str
    kind: ProgramKind


class FacilityClosure(_Model):
    """A day the whole facility is closed (a holiday): no program runs."""

    facility_id: str
    on_date: date
    reason: str


# -- fleet ---------------------------------------------------------------------------------


class DeviceIn(_Model):
    """What staff may change of a provisioned kiosk (its broker account is `welfare device`'s)."""

    label: str = Field(default="", max_length=80)
    program_ids: list[EntityId] = Field(default_factory=list, max_length=50)
    health_interval_s: float = Field(default=60, ge=5, le=3600)
    resend_after_s: float = Field(default=30, ge=1, le=3600)


class Device(DeviceIn):
    """A provisioned kiosk with the state of its roster sync (no personal data)."""

    facility_id: str
    device_id: str
    created_at: datetime
    latest_version: str | None = Field(description="The roster the center built last.")
    sent_version: str | None
    held_version: str | None = Field(description="The roster the device last reported.")
    reported_at: datetime | None
    report_reason: str | None
    report_detail: str | None
    behind: bool = Field(description="The device does not hold the latest roster.")
    key_ids: list[str]


class FacilityKey(_Model):
    """One version of a facility's credential key (never the key itself)."""

    version: int
    state: Literal["current", "previous", "retired"]
    key_id: str | None = Field(description="Public id the kiosks report; None without a master.")
    created_at: datetime
    retired_at: datetime | None
    credentials: int = Field(description="Card and NFC hashes stored under this version.")
    devices_holding: list[str] = Field(description="Devices that reported holding this key.")


class KeyRotation(_Model):
    """What a rotation did."""

    facility_id: str
    version: int
    previous: int
    rehashed: int
    unsealed_missing: int = Field(
        description="Cards registered before UIDs were kept sealed: they cannot be re-hashed."
    )
