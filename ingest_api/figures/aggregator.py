"""The exact aggregator: unique persons, person-visits and cases for any slice and grouping.

Counting happens once, here, from the month × program × person rollup: unique persons are
counted distinct over the whole period and group (never added up across months or programs),
person-visits and cases follow each program's counting rule (data in `counting_rules`), and
session-day cases OR the day masks of a program's month before counting the days.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ingest_api.figures.const import DIMS, SOURCES, UNKNOWN, Dim, Source
from ingest_api.figures.models import FigureRow

# Column expressions of each dimension over the joined rows (aliases in _BASE).
_DIM_EXPR: dict[str, str] = {
    "period": "per.label",
    "facility": "p.facility_id",
    "function": "p.function",
    "business_area": "p.business_area",
    "unit_business": "p.unit_business",
    "program": "p.program_id",
    "month": "to_char(r.month, 'YYYY-MM')",
    "quarter": "to_char(r.month, 'YYYY') || '-Q' || extract(quarter FROM r.month)::text",
    "year": "to_char(r.month, 'YYYY')",
    "gender": f"coalesce(pe.gender, '{UNKNOWN}')",
    "age_band": (f"coalesce(pe.age_band, figures_age_band(pe.birth_date, per.as_of), '{UNKNOWN}')"),
    "neighbourhood": f"coalesce(pe.neighbourhood, '{UNKNOWN}')",
    "fee_type": "coalesce(en.fee_type, p.fee_type)",
}

_BASE = """
SELECT {dims},
       r.program_id AS _program, r.month AS _month, r.days, r.attendances, r.day_mask,
       cr.visit_unit, cr.case_unit, cr.counts_unique,
       coalesce(pe.person_id, r.person_ref) AS person_key
FROM {source} AS r
JOIN unnest(%(labels)s::text[], %(firsts)s::date[], %(lasts)s::date[], %(asofs)s::date[])
     AS per(label, first_month, last_month, as_of)
  ON r.month BETWEEN per.first_month AND per.last_month
JOIN programs AS p ON p.program_id = r.program_id
JOIN counting_rules AS cr ON cr.rule_id = p.rule_id AND cr.in_figures
LEFT JOIN figures_persons AS pe ON pe.person_ref = r.person_ref
LEFT JOIN enrolments AS en ON en.member_ref = r.person_ref AND en.program_id = r.program_id
WHERE r.month BETWEEN %(lo)s AND %(hi)s
  AND (%(facility)s::text IS NULL OR p.facility_id = %(facility)s)
  AND (%(function)s::text IS NULL OR p.function = %(function)s)
  AND (%(business_area)s::text IS NULL OR p.business_area = %(business_area)s)
  AND (%(unit_business)s::text IS NULL OR p.unit_business = %(unit_business)s)
  AND (%(program)s::text IS NULL OR p.program_id = %(program)s)
"""

# Several groupings in one pass over the rows (GROUPING SETS); `gid` tells the groupings apart.
_QUERY = """
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


@dataclass(frozen=True, slots=True)
class Period:
    """A labelled run of whole months (first and last month given by their first day)."""

    label: str
    first_month: date
    last_month: date

    @property
    def as_of(self) -> date:
        """The period's last day: members' age bands are taken on it."""
        last = calendar.monthrange(self.last_month.year, self.last_month.month)[1]
        return self.last_month.replace(day=last)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which programs count: a facility (None: the city) and optionally one hierarchy node."""

    facility_id: str | None = None
    function: str | None = None
    business_area: str | None = None
    unit_business: str | None = None
    program_id: str | None = None


def month_start(year: int, month: int) -> date:
    """The first day of a month."""
    return date(year, month, 1)


def quarter_periods(*, year: int, quarter: int) -> list[Period]:
    """The report's periods: each month of the quarter, the quarter, and the year to date."""
    first = 3 * (quarter - 1) + 1
    months = [
        Period(f"{year}-{m:02d}", month_start(year, m), month_start(year, m))
        for m in range(first, first + 3)
    ]
    q = Period(f"{year}-Q{quarter}", month_start(year, first), month_start(year, first + 2))
    ytd = Period(f"{year}-YTD", month_start(year, 1), month_start(year, first + 2))
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
    dim_sql = ", ".join(["'all' AS _all", *(f'({_DIM_EXPR[d]}) COLLATE "C" AS {d}' for d in used)])
    # GROUPING(...) sets a bit for each key a grouping leaves out (first key = highest bit).
    gids = {
        sum(1 << (len(keys) - 1 - i) for i, k in enumerate(keys) if k != "_all" and k not in s): s
        for s in result
    }
    base = _BASE.format(dims=dim_sql, source=SOURCES[source])
    query = _QUERY.format(
        base=base,
        keys=", ".join(keys),
        person_sets=", ".join("(" + ", ".join(["_all", *s, "person_key"]) + ")" for s in result),
        session_sets=", ".join(
            "(" + ", ".join(["_all", *s, "_program", "_month"]) + ")" for s in result
        ),
        agg_keys=", ".join(f"agg.{k}" for k in keys),
        join=" ".join(f"AND s.{k} IS NOT DISTINCT FROM agg.{k}" for k in keys),
    )
    params = {
        "labels": [p.label for p in periods],
        "firsts": [p.first_month for p in periods],
        "lasts": [p.last_month for p in periods],
        "asofs": [p.as_of for p in periods],
        "lo": min(p.first_month for p in periods),
        "hi": max(p.last_month for p in periods),
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
        rows = cur.execute(query.encode(), params).fetchall()
    for r in rows:
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
