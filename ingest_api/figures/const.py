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
# The relations each source reads, by grain: whole months read the month × program × person
# rows, other spans of days the day × program × person rows. Rollup and raw have the same
# columns (the raw views recount from attendance_events, for checks and benchmarks).
MONTH_SOURCES: Final[dict[str, str]] = {
    "rollup": "figures_member_month",
    "raw": "figures_raw_member_month",
}
DAY_SOURCES: Final[dict[str, str]] = {
    "rollup": "figures_member_day",
    "raw": "figures_raw_member_day",
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
