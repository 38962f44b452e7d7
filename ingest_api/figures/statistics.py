"""Statistics a center pulls itself: users by group, programs per person, duplicate service."""

from __future__ import annotations

from datetime import date
from typing import Any, Final, Literal, LiteralString

import psycopg
from psycopg import sql

from ingest_api.figures.const import MONTH_SOURCES, Dim, Source
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.figures.models import CountRow, DuplicateService, ProgramsPerPerson, Statistics

KindLevel = Literal["unit_business", "business_area"]

# The same person key and program rules as the figures engine (engine.py).
_FROM: Final[LiteralString] = """
FROM {source} AS r
JOIN programs AS p ON p.program_id = r.program_id
JOIN counting_rules AS cr ON cr.rule_id = p.rule_id AND cr.in_figures AND cr.counts_unique
LEFT JOIN figures_persons AS pe ON pe.person_ref = r.person_ref
WHERE r.month BETWEEN %(first)s AND %(last)s
  AND (%(facility)s::text IS NULL OR p.facility_id = %(facility)s)
"""


def _rows(source: Source) -> sql.Composable:
    """The counted rows of programs that count unique persons, in a period and facility."""
    return sql.SQL(_FROM).format(source=sql.Identifier(MONTH_SOURCES[source]))


def _users(
    conn: psycopg.Connection[Any], *, period: Period, scope: Scope, dim: Dim, source: Source
) -> list[CountRow]:
    """Distinct users per value of one dimension."""
    rows = compute(conn, periods=[period], dims=[dim], scope=scope, source=source)
    return [CountRow(value=r.key[dim], users=r.unique_persons) for r in rows if r.unique_persons]


def programs_per_person(
    conn: psycopg.Connection[Any],
    *,
    facility_id: str | None,
    first_month: date,
    last_month: date,
    source: Source = "rollup",
) -> list[ProgramsPerPerson]:
    """How many people used 1, 2, 3, … programs in the period."""
    query = sql.SQL(
        "SELECT n, count(*) FROM (SELECT coalesce(pe.person_id, r.person_ref) AS person,"
        " count(DISTINCT p.program_id) AS n {rows} GROUP BY 1) AS x GROUP BY n ORDER BY n"
    ).format(rows=_rows(source))
    rows = conn.execute(
        query, {"first": first_month, "last": last_month, "facility": facility_id}
    ).fetchall()
    return [ProgramsPerPerson(programs=int(r[0]), persons=int(r[1])) for r in rows]


def duplicate_service(
    conn: psycopg.Connection[Any],
    *,
    first_month: date,
    last_month: date,
    level: KindLevel = "unit_business",
    source: Source = "rollup",
) -> list[DuplicateService]:
    """People served by the same kind of service at more than one center (the city's view).

    Only memberships whose member consented to provision to the city (and did not withdraw).
    """
    query = sql.SQL(
        """
        SELECT person, kind, array_agg(facility ORDER BY facility),
               array_agg(visits ORDER BY facility)
        FROM (
            SELECT coalesce(pe.person_id, r.person_ref) AS person, {kind} AS kind,
                   p.facility_id AS facility, sum(r.days)::integer AS visits
            {rows}
            -- provided to the city only with the member's consent (kind 'transfer'), and
            -- never after it was withdrawn (docs/security.md, a member's rights)
            AND EXISTS (SELECT 1 FROM member_consents k WHERE k.member_ref = r.person_ref
                        AND k.kind = 'transfer' AND k.withdrawn_on IS NULL)
            GROUP BY 1, 2, 3
        ) AS per_facility
        GROUP BY person, kind
        HAVING count(*) > 1
        ORDER BY kind, person
        """
    ).format(rows=_rows(source), kind=sql.Identifier("p", level))
    rows = conn.execute(
        query, {"first": first_month, "last": last_month, "facility": None}
    ).fetchall()
    return [
        DuplicateService(
            person_id=r[0],
            kind=r[1],
            facilities=list(r[2]),
            person_visits=dict(zip(r[2], r[3], strict=True)),
        )
        for r in rows
    ]


def statistics(
    conn: psycopg.Connection[Any],
    *,
    facility_id: str | None,
    first_month: date,
    last_month: date,
    source: Source = "rollup",
) -> Statistics:
    """Users by gender, age band, neighbourhood and program, and programs per person."""
    period = Period.months("period", first_month, last_month)
    scope = Scope(facility_id=facility_id)
    total = compute(conn, periods=[period], dims=[], scope=scope, source=source)
    return Statistics(
        facility_id=facility_id,
        first_month=f"{first_month:%Y-%m}",
        last_month=f"{last_month:%Y-%m}",
        total_users=total[0].unique_persons if total else 0,
        by_gender=_users(conn, period=period, scope=scope, dim="gender", source=source),
        by_age_band=_users(conn, period=period, scope=scope, dim="age_band", source=source),
        by_neighbourhood=_users(
            conn, period=period, scope=scope, dim="neighbourhood", source=source
        ),
        by_program=_users(conn, period=period, scope=scope, dim="program", source=source),
        programs_per_person=programs_per_person(
            conn,
            facility_id=facility_id,
            first_month=first_month,
            last_month=last_month,
            source=source,
        ),
    )
