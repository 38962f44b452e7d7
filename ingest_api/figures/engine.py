"""The figures engine: the one definition of unique persons, person-visits and cases.

Every figure anyone sees — the overview page, the API, the quarterly report, the statistics,
the demo — is counted here, from the rollups, by each program's counting rule (data in
`counting_rules`): unique persons are counted distinct over the whole period and group (never
added up across months or programs), person-visits and cases follow the rule's units, and
session-day cases OR the day masks of a program's month before counting the days. Programs whose
rule is not `in_figures` (one-off public events, per-program publicity) never count.

Whole months are read from the month × program × person rollup; any other span of days (one
day on the overview page, say) from the day × program × person rollup, folded into the same
month-shaped rows, so both give the same numbers for the same days.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ingest_api.figures.const import DAY_SOURCES, DIMS, MONTH_SOURCES, Dim, Source
from ingest_api.figures.models import FigureRow

# Column expressions of each dimension over the joined rows (aliases in _BASE).
_DIM_EXPR: Final[dict[str, LiteralString]] = {
    "period": "r.period_label",
    "facility": "p.facility_id",
    "function": "p.function",
    "business_area": "p.business_area",
    "unit_business": "p.unit_business",
    "program": "p.program_id",
    "month": "to_char(r.month, 'YYYY-MM')",
    "quarter": "to_char(r.month, 'YYYY') || '-Q' || extract(quarter FROM r.month)::text",
    "year": "to_char(r.month, 'YYYY')",
    # 'unknown' is figures.const.UNKNOWN (a literal here: the expressions are constant SQL).
    "gender": "coalesce(pe.gender, 'unknown')",
    "age_band": "coalesce(pe.age_band, figures_age_band(pe.birth_month, r.as_of), 'unknown')",
    "neighbourhood": "coalesce(pe.neighbourhood, 'unknown')",
    "fee_type": "coalesce(en.fee_type, p.fee_type)",
}

# The periods, as a relation the rows are joined to.
_PERIODS: Final[LiteralString] = """
unnest(%(labels)s::text[], %(firsts)s::date[], %(lasts)s::date[], %(asofs)s::date[])
    AS per(label, first_day, last_day, as_of)"""

# Month-shaped rows of whole-month periods: straight from the month rollup.
_MONTH_ROWS: Final[LiteralString] = """
SELECT per.label AS period_label, per.as_of, m.facility_id, m.month, m.program_id,
       m.person_ref, m.days, m.attendances, m.day_mask
FROM {source} AS m
JOIN {periods} ON m.month BETWEEN per.first_day AND per.last_day
WHERE m.month BETWEEN %(lo)s AND %(hi)s
"""

# Month-shaped rows of any spans of days: the day rollup folded per period, month and person.
_DAY_ROWS: Final[LiteralString] = """
SELECT per.label AS period_label, per.as_of, d.facility_id,
       date_trunc('month', d.service_date::timestamp)::date AS month, d.program_id,
       d.person_ref, count(*)::integer AS days, sum(d.attendances)::integer AS attendances,
       bit_or(1 << (extract(day FROM d.service_date)::integer - 1))::integer AS day_mask
FROM {source} AS d
JOIN {periods} ON d.service_date BETWEEN per.first_day AND per.last_day
WHERE d.service_date BETWEEN %(lo)s AND %(hi)s
GROUP BY per.label, per.as_of, d.facility_id, 4, d.program_id, d.person_ref
"""

_BASE: Final[LiteralString] = """
SELECT {dims},
       r.program_id AS _program, r.month AS _month, r.days, r.attendances, r.day_mask,
       cr.visit_unit, cr.case_unit, cr.counts_unique,
       coalesce(pe.person_id, r.person_ref) AS person_key
FROM ({rows}) AS r
JOIN programs AS p ON p.program_id = r.program_id
JOIN counting_rules AS cr ON cr.rule_id = p.rule_id AND cr.in_figures
LEFT JOIN figures_persons AS pe ON pe.person_ref = r.person_ref
LEFT JOIN enrolments AS en ON en.member_ref = r.person_ref AND en.program_id = r.program_id
WHERE (%(facility)s::text IS NULL OR p.facility_id = %(facility)s)
  AND (%(function)s::text IS NULL OR p.function = %(function)s)
  AND (%(business_area)s::text IS NULL OR p.business_area = %(business_area)s)
  AND (%(unit_business)s::text IS NULL OR p.unit_business = %(unit_business)s)
  AND (%(program)s::text IS NULL OR p.program_id = %(program)s)
"""

# Several groupings in one pass over the rows (GROUPING SETS); `gid` tells the groupings apart.
_QUERY: Final[LiteralString] = """
WITH base AS ({base}),
per_program_month AS (
    SELECT {keys}, GROUPING({keys}) AS gid, bit_count(bit_or(day_mask)::bit(32)) AS n
    FROM base WHERE case_unit = 'session_day'
    GROUP BY GROUPING SETS ({session_sets})
),
session_days AS (
    SELECT gid, {keys}, sum(n)::bigint AS n FROM per_program_month GROUP BY gid, {keys}
),
per_person AS (
    -- One row per grouping and person first: unique persons are then a plain count, which
    -- hashes instead of sorting for count(DISTINCT …).
    SELECT {keys}, GROUPING({keys}) AS gid, bool_or(counts_unique) AS counted,
           sum(CASE visit_unit WHEN 'member_day' THEN days
                               WHEN 'attendance' THEN attendances ELSE 0 END) AS visits,
           sum(CASE case_unit WHEN 'member_day' THEN days
                              WHEN 'attendance' THEN attendances ELSE 0 END) AS cases
    FROM base
    GROUP BY GROUPING SETS ({person_sets})
),
agg AS (
    SELECT gid, {keys}, count(*) FILTER (WHERE counted) AS unique_persons,
           coalesce(sum(visits), 0) AS person_visits, coalesce(sum(cases), 0) AS other_cases
    FROM per_person
    GROUP BY gid, {keys}
)
SELECT agg.gid, {agg_keys}, agg.unique_persons, agg.person_visits,
       agg.other_cases + coalesce(s.n, 0) AS cases
FROM agg LEFT JOIN session_days AS s ON s.gid = agg.gid {join}
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
    """The three figures of every group of `dims` in each period ('period' tells them apart)."""
    found = compute_sets(conn, periods=periods, sets=[tuple(dims)], scope=scope, source=source)
    return found[tuple(dims)]


def _keys(names: Sequence[str], prefix: str | None = None) -> sql.Composable:
    """A comma-separated list of (optionally qualified) column names."""
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)


def _sets(groupings: Sequence[Sequence[str]]) -> sql.Composable:
    """The GROUPING SETS list of several groupings."""
    return sql.SQL(", ").join(sql.SQL("({})").format(_keys(g)) for g in groupings)


def compute_sets(
    conn: psycopg.Connection[Any],
    *,
    periods: Sequence[Period],
    sets: Sequence[tuple[Dim, ...]],
    scope: Scope | None = None,
    source: Source = "rollup",
) -> dict[tuple[Dim, ...], list[FigureRow]]:
    """Figures for several groupings at once (one pass; each grouping counted on its own)."""
    result: dict[tuple[Dim, ...], list[FigureRow]] = {tuple(s): [] for s in sets}
    if not periods or not sets:
        return result
    unknown = [d for s in sets for d in s if d not in DIMS]
    if unknown:
        raise ValueError(f"unknown dimensions: {unknown}")
    scope = scope or Scope()
    used = [d for d in DIMS if any(d in s for s in sets)]
    keys = ["_all", *used]
    # Byte-order collation: grouping keys need equality, not Korean sort order, and it is faster.
    dims = sql.SQL(", ").join(
        [
            sql.SQL("'all' AS _all"),
            *(
                sql.SQL('({}) COLLATE "C" AS {}').format(
                    sql.SQL(_DIM_EXPR[d]),
                    sql.Identifier(d),
                )
                for d in used
            ),
        ]
    )
    # GROUPING(...) sets a bit for each key a grouping leaves out (first key = highest bit).
    gids = {
        sum(1 << (len(keys) - 1 - i) for i, k in enumerate(keys) if k != "_all" and k not in s): s
        for s in result
    }
    whole_months = all(p.whole_months for p in periods)
    rows = sql.SQL(_MONTH_ROWS if whole_months else _DAY_ROWS).format(
        source=sql.Identifier((MONTH_SOURCES if whole_months else DAY_SOURCES)[source]),
        periods=sql.SQL(_PERIODS),
    )
    base = sql.SQL(_BASE).format(dims=dims, rows=rows)
    query = sql.SQL(_QUERY).format(
        base=base,
        keys=_keys(keys),
        person_sets=_sets([["_all", *s, "person_key"] for s in result]),
        session_sets=_sets([["_all", *s, "_program", "_month"] for s in result]),
        agg_keys=_keys(keys, "agg"),
        join=sql.SQL(" ").join(
            sql.SQL("AND {} IS NOT DISTINCT FROM {}").format(
                sql.Identifier("s", k), sql.Identifier("agg", k)
            )
            for k in keys
        ),
    )
    params = {
        "labels": [p.label for p in periods],
        "firsts": [p.first_day for p in periods],
        "lasts": [p.last_day for p in periods],
        "asofs": [p.as_of for p in periods],
        "lo": min(p.first_day for p in periods),
        "hi": max(p.last_day for p in periods),
        "facility": scope.facility_id,
        "function": scope.function,
        "business_area": scope.business_area,
        "unit_business": scope.unit_business,
        "program": scope.program_id,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        if not conn.autocommit:
            # Room to sort and hash a city year in memory (this transaction only).
            cur.execute("SET LOCAL work_mem = '64MB'")
        found = cur.execute(query, params).fetchall()
    for r in found:
        grouping = gids[r["gid"]]
        result[grouping].append(
            FigureRow(
                key={d: str(r[d]) for d in grouping},
                unique_persons=int(r["unique_persons"]),
                person_visits=int(r["person_visits"]),
                cases=int(r["cases"]),
            )
        )
    for rows_of_set in result.values():
        rows_of_set.sort(key=lambda row: tuple(row.key.values()))
    return result
