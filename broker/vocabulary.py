"""The shared vocabulary: the enums and id types every part of Smart Welfare speaks.

One definition each. The kiosk, the wire contract, the registry and the figures all take
their outcomes, genders, statuses, age bands, fee types and functions from here, so a value
the registry accepts is a value every kiosk message accepts too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator, Field

from broker.const import ID_PATTERN, MEMBER_REF_PATTERN, VISITOR_CODE_PATTERN

# -- ids ---------------------------------------------------------------------------------------

# Facility, device and program ids travel in MQTT topics: no wildcards, no '/', 1-32 characters.
EntityId = Annotated[str, Field(pattern=ID_PATTERN)]
# Members (and visitors and contacts) are referred to by a pseudonymous reference, never by name.
MemberRef = Annotated[str, Field(pattern=MEMBER_REF_PATTERN)]
# A one-off visitor's personal ID code; it stands where a member_ref would.
VisitorCode = Annotated[str, Field(pattern=VISITOR_CODE_PATTERN)]
# A keyed hash (HMAC-SHA256, hex) of a card or NFC identifier; the clear UID never travels.
CredentialHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


# -- the kiosk's decision -----------------------------------------------------------------------


class Method(StrEnum):
    """How the member identified at the kiosk."""

    CARD = "card"
    NFC = "nfc"
    FACE = "face"
    STAFF = "staff"  # staff override or manual check-in


class Outcome(StrEnum):
    """What the kiosk decided about a tap; only `accepted` counts in the figures."""

    ACCEPTED = "accepted"
    ALREADY_SERVED = "already_served"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    INACTIVE_MEMBER = "inactive_member"
    NOT_ENROLLED = "not_enrolled"
    NO_SERVICE = "no_service"
    SITTING_FULL = "sitting_full"  # the sitting's seats are taken; a ticket for the next offered


class ProgramKind(StrEnum):
    """Kinds of sessions a kiosk serves."""

    MEAL = "meal"  # one meal per member per service, numbered tickets
    CLASS = "class"  # one check-in per member per session


class SyncReason(StrEnum):
    """Why a kiosk reports the roster it holds on .../sync (answered when it is behind)."""

    CONNECT = "connect"  # every (re)connection: a device back from a week offline asks here
    PERIODIC = "periodic"  # every few minutes, so a request lost while the center was down heals
    APPLIED = "applied"  # an update was applied: the center learns what the device holds
    REFUSED = "refused"  # an update failed its hash or signature: send the whole roster
    BEHIND = "behind"  # an update's base is not the version held: send a delta from it


class RejectReason(StrEnum):
    """Why the center refused one event for good (contract 1.4: `IngestAck.rejected`)."""

    INVALID = "invalid"  # the event breaks the contract (the rest of its batch may be valid)
    DB_REJECTED = "db_rejected"  # valid JSON the database refuses (e.g. a NUL character)


class NameDisplay(StrEnum):
    """How the kiosk shows a member's name on success."""

    FULL = "full"
    MASKED = "masked"  # 김*수


# -- people -------------------------------------------------------------------------------------


class Gender(StrEnum):
    """Gender as the centers' forms count it (남/여)."""

    MALE = "M"
    FEMALE = "F"


GENDER_LABELS: Final[dict[Gender, str]] = {Gender.MALE: "남", Gender.FEMALE: "여"}


class MemberStatus(StrEnum):
    """A member's standing; only active members are let in or put on a kiosk roster."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    MOVED_OUT = "moved_out"
    DECEASED = "deceased"
    ERASED = "erased"  # personal data erased at the member's request; only figures remain


STATUS_LABELS: Final[dict[MemberStatus, str]] = {
    MemberStatus.ACTIVE: "이용 중",
    MemberStatus.SUSPENDED: "이용 중지",
    MemberStatus.MOVED_OUT: "전출",
    MemberStatus.DECEASED: "사망",
    MemberStatus.ERASED: "정보 삭제",
}


class ConsentKind(StrEnum):
    """Consents a member gives (or withdraws) at registration."""

    PRIVACY = "privacy"  # collection and use of personal data
    SENSITIVE = "sensitive"  # sensitive data (recipient status, disability)
    FACE = "face"  # face match at the kiosk: separate consent, never implied
    TRANSFER = "transfer"  # provision to the city and its research institute
    SMS = "sms"


class CredentialKind(StrEnum):
    """What a stored credential hash was read from."""

    CARD = "card"
    NFC = "nfc"


# The agreed age bands (만 나이) of the city's forms; the database's figures_age_band() matches.
AGE_BANDS: Final[tuple[str, ...]] = (
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


def _known_band(value: str) -> str:
    """Only the agreed age bands, so figures can be grouped."""
    if value not in AGE_BANDS:
        raise ValueError(f"age_band must be one of {', '.join(AGE_BANDS)}")
    return value


AgeBand = Annotated[str, AfterValidator(_known_band)]


# -- programs and figures -----------------------------------------------------------------------


class Function(StrEnum):
    """The three legal functions of a community welfare center (3대 기능), in the forms' order."""

    CASE_MANAGEMENT = "case_management"
    SERVICE_PROVISION = "service_provision"
    COMMUNITY_ORGANIZING = "community_organizing"


FUNCTION_LABELS: Final[dict[Function, str]] = {
    Function.CASE_MANAGEMENT: "사례관리 기능",
    Function.SERVICE_PROVISION: "서비스제공 기능",
    Function.COMMUNITY_ORGANIZING: "지역조직화 기능",
}


class FeeType(StrEnum):
    """How a program (or one member's enrolment) is paid for."""

    PAID = "paid"
    REDUCED = "reduced"
    FREE = "free"


FEE_LABELS: Final[dict[FeeType, str]] = {
    FeeType.PAID: "유료",
    FeeType.REDUCED: "감면",
    FeeType.FREE: "무료",
}


class Figure(StrEnum):
    """The three performance figures the city asks for."""

    UNIQUE_PERSONS = "unique_persons"  # 실인원: distinct people served in the period
    PERSON_VISITS = "person_visits"  # 연인원: every attendance by the program's counting rule
    CASES = "cases"  # 건: sessions, cases or activities by the program's counting rule


FIGURE_LABELS: Final[dict[Figure, str]] = {
    Figure.UNIQUE_PERSONS: "실인원",
    Figure.PERSON_VISITS: "연인원",
    Figure.CASES: "건",
}
