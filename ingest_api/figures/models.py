"""Pydantic models of the figures, the quarterly report and the statistics."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest_api.registry.models import Targets


class _Model(BaseModel):
    """Base: unknown fields are mistakes."""

    model_config = ConfigDict(extra="forbid")


class Figures(_Model):
    """The three figures of one cell, and the days anything in it took place."""

    unique_persons: int = 0
    person_visits: int = 0
    cases: int = 0
    operating_days: int = Field(default=0, description="Service days with any attendance.")


class FigureRow(_Model):
    """Figures of one group: its key (dimension -> value) and the three figures."""

    key: dict[str, str]
    unique_persons: int
    person_visits: int
    cases: int
    operating_days: int = Field(default=0, description="Service days with any attendance.")

    def figures(self) -> Figures:
        """The figures without the key."""
        return Figures(
            unique_persons=self.unique_persons,
            person_visits=self.person_visits,
            cases=self.cases,
            operating_days=self.operating_days,
        )


class FacilityFigures(_Model):
    """The figures of a facility (program_id None) or of one of its programs, over a period."""

    facility_id: str
    program_id: str | None
    unique_persons: int
    person_visits: int
    cases: int
    operating_days: int = 0


class Block(_Model):
    """One period's columns of the form: total, 남/여, 유료/감면/무료."""

    total: Figures = Field(default_factory=Figures)
    male: Figures = Field(default_factory=Figures)
    female: Figures = Field(default_factory=Figures)
    paid: Figures = Field(default_factory=Figures)
    reduced: Figures = Field(default_factory=Figures)
    free: Figures = Field(default_factory=Figures)
    daily_average: float | None = Field(
        default=None, description="일평균: person-visits per operating day (one decimal)."
    )


class Achievement(_Model):
    """Year-to-date actual as a percentage of the yearly target (one decimal)."""

    unique_persons: float | None = None
    person_visits: float | None = None
    cases: float | None = None


class ReportRow(_Model):
    """One row of the quarterly report: a hierarchy node with its periods' blocks."""

    level: Literal["total", "facility", "function", "business_area", "unit_business", "program"]
    item_no: str = Field(default="", description="연번: 1 / 1-2 / 1-2-3 / 1-2-3-4 down the tree.")
    facility_id: str | None = None
    function: str | None = None
    business_area: str | None = None
    unit_business: str | None = None
    program_id: str | None = None
    label: str
    fee_type: str | None = None
    team: str = Field(default="", description="팀명 (shared by every program below, else empty).")
    manager: str = Field(default="", description="담당자 (likewise).")
    indicator: str = Field(default="", description="실적 산정 지표 (programs).")
    operating_form: str = Field(default="", description="운영형태 (likewise).")
    programs: int = Field(default=0, description="프로그램 수: programs that count, below.")
    periods: dict[str, Block]
    target: Targets
    year_to_date: Figures
    achievement: Achievement


class MonthFigures(_Model):
    """One month of the report's total row (the chart of the months against the targets)."""

    month: str
    unique_persons: int = 0
    person_visits: int = 0
    cases: int = 0


class QuarterlyReport(_Model):
    """The quarterly performance report of a facility, or of the city (facility_id None)."""

    facility_id: str | None
    facility_name: str
    year: int
    quarter: int = Field(ge=1, le=4)
    months: list[str] = Field(description="The quarter's months, YYYY-MM.")
    period_labels: dict[str, str]
    generated_from: Literal["rollup", "raw"]
    first_day: date
    last_day: date
    rows: list[ReportRow]
    monthly: list[MonthFigures] = Field(
        default_factory=list, description="The total row's months, January to the quarter's end."
    )


class CountRow(_Model):
    """Distinct users of one group."""

    value: str
    users: int


class ProgramsPerPerson(_Model):
    """How many people used exactly `programs` programs."""

    programs: int
    persons: int


class DuplicateService(_Model):
    """One person served by the same kind of service at more than one center."""

    person_id: str
    kind: str
    facilities: list[str]
    person_visits: dict[str, int]


class Statistics(_Model):
    """The statistics a center (or the city) pulls itself for a period."""

    facility_id: str | None
    first_month: str
    last_month: str
    total_users: int
    by_gender: list[CountRow]
    by_age_band: list[CountRow]
    by_neighbourhood: list[CountRow]
    by_program: list[CountRow]
    programs_per_person: list[ProgramsPerPerson]
