"""The figures engine: the one definition of unique persons, person-visits and cases.

Every figure anyone sees — the overview page, the API, the quarterly report, the statistics,
the demo — is counted here, by each program's counting rule (data in `counting_rules`): unique
persons are counted distinct over the whole period and group (never added up across months or
programs), person-visits and cases follow the rule's units, and session-day cases OR the day
masks of a program's month before counting the days. Programs whose rule is not `in_figures`
(one-off public events, per-program publicity) never count.

The rows counted are month × program × person rows (cube.py's slabs). Whole months come from the
month rollup, kept in memory per (facility, month) and reloaded only when the refresh renews
that month (so closed months are read once); the raw rows (checks, benchmarks) and any other
span of days (the day rollup folded per period) are loaded per request. All of them are merged
by the same code below, in one pass per grouping.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from pyroaring import BitMap

from ingest_api.figures.const import DAY_SOURCES, DIMS, Dim, Source
from ingest_api.figures.cube import PERSON_DIMS, Dictionary, Slab, cached_slabs, load_rows
from ingest_api.figures.models import FigureRow

_TIME_DIMS: Final = ("period", "month", "quarter", "year")
_PROGRAM_DIMS: Final = ("facility", "function", "business_area", "unit_business", "program")

# The programs that count, in the scope: the counting rule is data (counting_rules).
_PROGRAMS: Final[LiteralString] = """
SELECT p.program_id, p.facility_id, p.function, p.business_area, p.unit_business, p.fee_type,
       cr.visit_unit, cr.case_unit, cr.counts_unique
FROM programs AS p
JOIN counting_rules AS cr ON cr.rule_id = p.rule_id AND cr.in_figures
WHERE (%(facility)s::text IS NULL OR p.facility_id = %(facility)s)
  AND (%(function)s::text IS NULL OR p.function = %(function)s)
  AND (%(business_area)s::text IS NULL OR p.business_area = %(business_area)s)
  AND (%(unit_business)s::text IS NULL OR p.unit_business = %(unit_business)s)
  AND (%(program)s::text IS NULL OR p.program_id = %(program)s)
  AND (%(team)s::text IS NULL OR p.team = %(team)s)
"""

# Month-shaped rows of whole months straight from the raw rows (the reference for checks and
# benchmarks; the rollup's are cached in cube.py).
_RAW_MONTH_ROWS: Final[LiteralString] = """
SELECT * FROM figures_raw_member_month
WHERE month BETWEEN %(lo)s AND %(hi)s AND program_id = ANY(%(programs)s)
"""

# Month-shaped rows of any spans of days: the day rows folded per period, month and person.
_DAY_ROWS: Final[LiteralString] = """
SELECT per.label AS period_label, d.facility_id,
       date_trunc('month', d.service_date::timestamp)::date AS month, d.program_id,
       d.person_ref, count(*)::integer AS days, sum(d.attendances)::integer AS attendances,
       bit_or(1 << (extract(day FROM d.service_date)::integer - 1))::integer AS day_mask
FROM {source} AS d
JOIN unnest(%(labels)s::text[], %(firsts)s::date[], %(lasts)s::date[])
    AS per(label, first_day, last_day) ON d.service_date BETWEEN per.first_day AND per.last_day
WHERE d.service_date BETWEEN %(lo)s AND %(hi)s AND d.program_id = ANY(%(programs)s)
GROUP BY per.label, d.facility_id, 3, d.program_id, d.person_ref
"""


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True, slots=True)
class Period:
    """A labelled span of service days, first and last included (often whole months)."""

    label: str
    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        """A period ends on or after its first day."""
        if self.last_day < self.first_day:
            raise ValueError(f"period {self.label!r} ends before it starts")

    @classmethod
    def months(cls, label: str, first_month: date, last_month: date) -> Period:
        """Whole months, from `first_month`'s month to `last_month`'s month."""
        return cls(label, first_month.replace(day=1), month_end(last_month))

    @classmethod
    def day(cls, day: date) -> Period:
        """One service day, labelled by its ISO date."""
        return cls(day.isoformat(), day, day)

    @property
    def whole_months(self) -> bool:
        """Whether the period is a run of whole months (the month rollup answers it)."""
        return self.first_day.day == 1 and self.last_day == month_end(self.last_day)

    @property
    def first_month(self) -> date:
        """The first day of the period's first month."""
        return self.first_day.replace(day=1)

    @property
    def last_month(self) -> date:
        """The first day of the period's last month."""
        return self.last_day.replace(day=1)

    @property
    def as_of(self) -> date:
        """The period's last day: members' age bands are taken on it."""
        return self.last_day


@dataclass(frozen=True, slots=True)
class Scope:
    """Which programs count: a facility (None: the city) and optionally one hierarchy node."""

    facility_id: str | None = None
    function: str | None = None
    business_area: str | None = None
    unit_business: str | None = None
    program_id: str | None = None
    team: str | None = None  # the programs a team runs (programs.team, 팀명)


def quarter_periods(*, year: int, quarter: int) -> list[Period]:
    """The report's periods: each month of the quarter, the quarter, and the year to date."""
    first = 3 * (quarter - 1) + 1
    months = [
        Period.months(f"{year}-{m:02d}", date(year, m, 1), date(year, m, 1))
        for m in range(first, first + 3)
    ]
    q = Period.months(f"{year}-Q{quarter}", date(year, first, 1), date(year, first + 2, 1))
    ytd = Period.months(f"{year}-YTD", date(year, 1, 1), date(year, first + 2, 1))
    return [*months, q, ytd]


def compute(
    conn: psycopg.Connection[Any],
    *,
    periods: Sequence[Period],
    dims: Sequence[Dim],
    scope: Scope | None = None,
    source: Source = "rollup",
) -> list[FigureRow]:
    """The figures of every group of `dims` in each period ('period' tells them apart)."""
    found = compute_sets(conn, periods=periods, sets=[tuple(dims)], scope=scope, source=source)
    return found[tuple(dims)]


@dataclass(frozen=True, slots=True)
class _Program:
    """What counting needs of a program: its place in the hierarchy and its rule."""

    values: dict[str, str]  # facility, function, business_area, unit_business, program
    fee_type: str
    visit_unit: str
    case_unit: str
    counts_unique: bool


@dataclass
class _Base:
    """One program and one combination of person values (and of the time values asked for)
    within a period: the first merge of the slabs' marginals, shared by every grouping."""

    program: int
    labels: tuple[str, ...]
    time: tuple[str, ...]
    bitmaps: list[BitMap] = field(default_factory=list)
    visits: int = 0
    cases: int = 0
    sessions: dict[date, int] = field(default_factory=dict)  # this program's days, by month
    operating: dict[date, int] = field(default_factory=dict)

    def persons(self) -> BitMap | None:
        """The distinct persons counted (None when the program counts no unique persons)."""
        if not self.bitmaps:
            return None
        if len(self.bitmaps) > 1:
            self.bitmaps = [BitMap.union(*self.bitmaps)]
        return self.bitmaps[0]


@dataclass
class _Group:
    """What one group of a grouping has gathered: person sets, sums and day masks."""

    persons: list[BitMap] = field(default_factory=list)
    visits: int = 0
    cases: int = 0
    operating: dict[date, int] = field(default_factory=dict)


def _time_value(dim: str, period: Period, month: date) -> str:
    """The value of a time dimension for a slab's month within a period."""
    if dim == "period":
        return period.label
    if dim == "month":
        return f"{month:%Y-%m}"
    if dim == "quarter":
        return f"{month.year}-Q{(month.month - 1) // 3 + 1}"
    return str(month.year)


def _load_programs(conn: psycopg.Connection[Any], scope: Scope) -> dict[str, _Program]:
    """The programs that count in `scope`, by id."""
    params = {
        "facility": scope.facility_id,
        "function": scope.function,
        "business_area": scope.business_area,
        "unit_business": scope.unit_business,
        "program": scope.program_id,
        "team": scope.team,
    }
    found = {}
    for pid, fid, function, area, unit, fee, visit, case, unique in conn.execute(_PROGRAMS, params):
        found[pid] = _Program(
            values={
                "facility": fid,
                "function": function,
                "business_area": area,
                "unit_business": unit,
                "program": pid,
            },
            fee_type=fee,
            visit_unit=visit,
            case_unit=case,
            counts_unique=bool(unique),
        )
    return found


def _months_of(period: Period) -> list[date]:
    """The first days of the months a period touches."""
    months = []
    month = period.first_month
    while month <= period.last_month:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _slabs(
    conn: psycopg.Connection[Any],
    *,
    periods: Sequence[Period],
    programs: dict[str, _Program],
    source: Source,
) -> tuple[Dictionary, list[list[Slab]]]:
    """The slabs each period is counted from: the cached rollup months, or loaded rows."""
    lo = min(p.first_day for p in periods)
    hi = max(p.last_day for p in periods)
    if all(p.whole_months for p in periods):
        if source == "rollup":
            dictionary, by_month = cached_slabs(
                conn, first_month=lo.replace(day=1), last_month=hi.replace(day=1)
            )
        else:
            dictionary = Dictionary()
            loaded = load_rows(
                conn,
                rows=sql.SQL(_RAW_MONTH_ROWS),
                group_cols=("month",),
                params={"lo": lo, "hi": hi, "programs": list(programs)},
                dictionary=dictionary,
            )
            by_month = {key[0]: [slab] for key, slab in loaded.items()}
        return dictionary, [
            [s for m in _months_of(p) for s in by_month.get(m, [])] for p in periods
        ]
    dictionary = Dictionary()
    loaded = load_rows(
        conn,
        rows=sql.SQL(_DAY_ROWS).format(source=sql.Identifier(DAY_SOURCES[source])),
        group_cols=("period_label", "month"),
        params={
            "labels": [p.label for p in periods],
            "firsts": [p.first_day for p in periods],
            "lasts": [p.last_day for p in periods],
            "lo": lo,
            "hi": hi,
            "programs": list(programs),
        },
        dictionary=dictionary,
    )
    return dictionary, [
        [slab for (label, _), slab in sorted(loaded.items()) if label == p.label] for p in periods
    ]


def compute_sets(
    conn: psycopg.Connection[Any],
    *,
    periods: Sequence[Period],
    sets: Sequence[tuple[Dim, ...]],
    scope: Scope | None = None,
    source: Source = "rollup",
) -> dict[tuple[Dim, ...], list[FigureRow]]:
    """Figures for several groupings at once, each grouping counted on its own.

    Unique persons are the size of the union of the groups' person sets (never a sum),
    person-visits and cases add up by each program's rule, and session-day cases and operating
    days count the bits of the day masks OR-ed per program and month (per month for operating
    days): exact for any grouping of any periods.
    """
    result: dict[tuple[Dim, ...], list[FigureRow]] = {tuple(s): [] for s in sets}
    if not periods or not sets:
        return result
    unknown = [d for s in sets for d in s if d not in DIMS]
    if unknown:
        raise ValueError(f"unknown dimensions: {unknown}")
    programs = _load_programs(conn, scope or Scope())
    if not programs:
        return result
    dictionary, period_slabs = _slabs(conn, periods=periods, programs=programs, source=source)
    by_code: list[_Program | None] = [programs.get(str(pid)) for pid in dictionary.programs.values]
    wanted = frozenset(i for i, p in enumerate(by_code) if p is not None)
    # Groupings that split persons alike share their bases: one pass over the marginals each.
    signatures: dict[tuple[str, ...], list[tuple[Dim, ...]]] = {}
    for grouping in result:
        split: tuple[str, ...] = tuple(d for d in PERSON_DIMS if d in grouping)
        signatures.setdefault(split, []).append(grouping)
    for person_dims, groupings in signatures.items():
        time_dims = tuple(d for d in _TIME_DIMS[1:] if any(d in grouping for grouping in groupings))
        bases = [
            _bases(
                person_dims,
                time_dims,
                period=period,
                slabs=slabs,
                by_code=by_code,
                wanted=wanted,
                values=dictionary.values.values,
            )
            for period, slabs in zip(periods, period_slabs, strict=True)
        ]
        for grouping in groupings:
            result[grouping] = _rows(
                grouping, time_dims=time_dims, periods=periods, bases=bases, by_code=by_code
            )
    return result


def _bases(
    person_dims: tuple[str, ...],
    time_dims: tuple[str, ...],
    *,
    period: Period,
    slabs: list[Slab],
    by_code: list[_Program | None],
    wanted: frozenset[int],
    values: list[str | None],
) -> list[_Base]:
    """A period's marginals merged per program, person values and time values."""
    fee_at = person_dims.index("fee_type") if "fee_type" in person_dims else -1
    found: dict[tuple[tuple[str, ...], int, tuple[str, ...]], _Base] = {}
    for slab in slabs:
        if wanted.isdisjoint(slab.programs):
            continue
        month = slab.month
        time = tuple(_time_value(d, period, month) for d in time_dims)
        for e in slab.marginal(person_dims, period.as_of):
            program = by_code[e.program]
            if program is None:
                continue
            labels = tuple(str(values[v]) for v in e.values)
            if fee_at >= 0 and values[e.values[fee_at]] is None:  # the program's own fee type
                labels = (*labels[:fee_at], program.fee_type, *labels[fee_at + 1 :])
            key = (time, e.program, labels)
            base = found.get(key)
            if base is None:
                base = found[key] = _Base(e.program, labels, time)
            if program.counts_unique:
                base.bitmaps.append(e.persons)
            if program.visit_unit == "member_day":
                base.visits += e.days
            elif program.visit_unit == "attendance":
                base.visits += e.attendances
            if program.case_unit == "member_day":
                base.cases += e.days
            elif program.case_unit == "attendance":
                base.cases += e.attendances
            elif program.case_unit == "session_day":
                base.sessions[month] = base.sessions.get(month, 0) | e.mask
            base.operating[month] = base.operating.get(month, 0) | e.mask
    bases = list(found.values())
    for base in bases:
        # A program's session days of a month all fall in one base: count them here.
        base.cases += sum(m.bit_count() for m in base.sessions.values())
    return bases


def _rows(
    grouping: tuple[Dim, ...],
    *,
    time_dims: tuple[str, ...],
    periods: Sequence[Period],
    bases: list[list[_Base]],
    by_code: list[_Program | None],
) -> list[FigureRow]:
    """One grouping's figure rows, merged from the periods' bases."""
    person_dims = [d for d in PERSON_DIMS if d in grouping]  # the order of the bases' labels
    program_dims = [d for d in grouping if d in _PROGRAM_DIMS]
    # In time_dims order, as `built` lists them (a grouping may name them in any order).
    mine = [i for i, d in enumerate(time_dims) if d in grouping]
    # Keys are built as period + time + program + person values, then put in grouping order.
    built = [
        *(["period"] if "period" in grouping else []),
        *(d for d in time_dims if d in grouping),
        *program_dims,
        *person_dims,
    ]
    order = [built.index(d) for d in grouping]
    program_part = {
        code: tuple(p.values[d] for d in program_dims)
        for code, p in enumerate(by_code)
        if p is not None
    }
    groups: dict[tuple[str, ...], _Group] = {}
    for period, period_bases in zip(periods, bases, strict=True):
        head = (period.label,) if "period" in grouping else ()
        for base in period_bases:
            full = (
                head + tuple(base.time[i] for i in mine) + program_part[base.program] + base.labels
            )
            key = tuple(full[i] for i in order)
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            persons = base.persons()
            if persons is not None:
                group.persons.append(persons)
            group.visits += base.visits
            group.cases += base.cases
            for month, mask in base.operating.items():
                group.operating[month] = group.operating.get(month, 0) | mask
    rows = []
    for key, group in groups.items():
        if len(group.persons) > 1:
            unique = len(BitMap.union(*group.persons))
        else:
            unique = len(group.persons[0]) if group.persons else 0
        rows.append(
            FigureRow.model_construct(
                key=dict(zip(grouping, key, strict=True)),
                unique_persons=unique,
                person_visits=group.visits,
                cases=group.cases,
                operating_days=sum(m.bit_count() for m in group.operating.values()),
            )
        )
    rows.sort(key=lambda row: tuple(row.key.values()))
    return rows
