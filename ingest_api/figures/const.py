"""Constants of the figures: dimensions, figure names and the report's labels."""

from __future__ import annotations

from typing import Final, Literal

Dim = Literal[
    "period",
    "facility",
    "function",
    "business_area",
    "unit_business",
    "program",
    "month",
    "quarter",
    "year",
    "gender",
    "age_band",
    "neighbourhood",
    "fee_type",
]
DIMS: Final[tuple[str, ...]] = Dim.__args__  # type: ignore[attr-defined]
Source = Literal["rollup", "raw"]
# The relation each source reads; both have the same columns.
SOURCES: Final[dict[str, str]] = {
    "rollup": "figures_member_month",
    "raw": "figures_raw_member_month",
}
FIGURES: Final = ("unique_persons", "person_visits", "cases")
FIGURE_LABELS: Final[dict[str, str]] = {
    "unique_persons": "실인원",
    "person_visits": "연인원",
    "cases": "건",
}
UNKNOWN: Final = "unknown"
LEVELS: Final = ("total", "facility", "function", "business_area", "unit_business", "program")
LEVEL_LABELS: Final[dict[str, str]] = {
    "total": "합계",
    "facility": "복지관",
    "function": "기능",
    "business_area": "사업분야",
    "unit_business": "단위사업",
    "program": "세부프로그램",
}
