"""Constants of the registry: the three functions, fee types, statuses and their Korean labels."""

from __future__ import annotations

from typing import Final, Literal

FunctionId = Literal["case_management", "service_provision", "community_organizing"]
FeeType = Literal["paid", "reduced", "free"]
StatusId = Literal["active", "suspended", "moved_out", "deceased"]
GenderId = Literal["M", "F"]
ConsentKind = Literal["privacy", "sensitive", "face", "transfer", "sms"]
CredentialKind = Literal["card", "nfc"]

# The order the centers' forms list the three legal functions (3대 기능).
FUNCTIONS: Final[tuple[FunctionId, ...]] = (
    "case_management",
    "service_provision",
    "community_organizing",
)
FUNCTION_LABELS: Final[dict[str, str]] = {
    "case_management": "사례관리 기능",
    "service_provision": "서비스제공 기능",
    "community_organizing": "지역조직화 기능",
}
FEE_TYPES: Final[tuple[FeeType, ...]] = ("paid", "reduced", "free")
FEE_LABELS: Final[dict[str, str]] = {"paid": "유료", "reduced": "감면", "free": "무료"}
GENDER_LABELS: Final[dict[str, str]] = {"M": "남", "F": "여"}
STATUSES: Final[tuple[StatusId, ...]] = ("active", "suspended", "moved_out", "deceased")
# Members with these statuses are on no kiosk roster.
OFF_ROSTER: Final[frozenset[str]] = frozenset({"suspended", "moved_out", "deceased"})
CITY: Final = "*"  # facility_id of city-wide node targets
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
