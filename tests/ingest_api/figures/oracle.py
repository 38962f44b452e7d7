"""An independent count of the figures, in Python over the raw rows (not the aggregator's SQL).

It reads attendance_events, community_contacts and the registry, and counts by the definitions
of the brief: unique persons = distinct people, person-visits and cases by each program's rule.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

_BANDS = (
    (10, "0-9"),
    (20, "10-19"),
    (30, "20-29"),
    (40, "30-39"),
    (50, "40-49"),
    (60, "50-59"),
    (65, "60-64"),
    (70, "65-69"),
    (75, "70-74"),
    (80, "75-79"),
    (85, "80-84"),
)


def age_band(birth: date | None, as_of: date) -> str | None:
    """The agreed age band of a birth date on a day (full years)."""
    if birth is None:
        return None
    age = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
    for limit, band in _BANDS:
        if age < limit:
            return band
    return "85+"


@dataclass(frozen=True)
class Record:
    """One program × day × person with its accepted attendances."""

    program: str
    day: date
    person_ref: str
    attendances: int


@dataclass
class RawData:
    """The raw rows and the registry, as plain Python."""

    records: list[Record]
    programs: dict[str, dict[str, Any]]
    persons: dict[str, dict[str, Any]]
    enrol_fee: dict[tuple[str, str], str | None]
    by_month: dict[tuple[int, int], list[Record]] = field(default_factory=dict)


def load(conn: psycopg.Connection[Any]) -> RawData:
    """Read everything the count needs."""
    counts: Counter[tuple[str, date, str]] = Counter()
    for program, day, ref in conn.execute(
        "SELECT program_id, service_date, member_ref FROM attendance_events"
        " WHERE outcome = 'accepted' AND program_id IS NOT NULL AND member_ref IS NOT NULL"
    ):
        counts[(program, day, ref)] += 1
    for program, day, code in conn.execute(
        "SELECT program_id, service_date, contact_code FROM community_contacts"
        " WHERE program_id IS NOT NULL"
    ):
        counts[(program, day, code)] += 1
    records = [Record(p, d, r, n) for (p, d, r), n in counts.items()]
    programs = {}
    for row in conn.execute(
        "SELECT p.program_id, p.facility_id, p.function, p.business_area, p.unit_business,"
        " p.fee_type, r.visit_unit, r.case_unit, r.counts_unique, r.in_figures"
        " FROM programs p JOIN counting_rules r USING (rule_id)"
    ):
        programs[row[0]] = dict(
            zip(
                (
                    "program",
                    "facility",
                    "function",
                    "business_area",
                    "unit_business",
                    "fee_type",
                    "visit_unit",
                    "case_unit",
                    "counts_unique",
                    "in_figures",
                ),
                row,
                strict=True,
            )
        )
    persons: dict[str, dict[str, Any]] = {}
    for ref, pid, gender, birth, hood in conn.execute(
        "SELECT member_ref, person_id, gender, birth_month, neighbourhood FROM members"
    ):
        persons[ref] = {"id": pid, "gender": gender, "birth": birth, "band": None, "hood": hood}
    for table, key in (("visitors", "visitor_code"), ("community_contacts", "contact_code")):
        query = sql.SQL("SELECT {}, gender, age_band, neighbourhood FROM {}").format(
            sql.Identifier(key), sql.Identifier(table)
        )
        for code, gender, band, hood in conn.execute(query):
            persons[code] = {
                "id": code,
                "gender": gender,
                "birth": None,
                "band": band,
                "hood": hood,
            }
    enrol_fee = {
        (m, p): f
        for m, p, f in conn.execute("SELECT member_ref, program_id, fee_type FROM enrolments")
    }
    data = RawData(records, programs, persons, enrol_fee)
    by_month: dict[tuple[int, int], list[Record]] = defaultdict(list)
    for rec in records:
        by_month[(rec.day.year, rec.day.month)].append(rec)
    data.by_month = dict(by_month)
    return data


def attributes(data: RawData, rec: Record, as_of: date) -> dict[str, str]:
    """The values of every dimension for one record."""
    prog = data.programs[rec.program]
    person = data.persons.get(rec.person_ref, {})
    fee = data.enrol_fee.get((rec.person_ref, rec.program)) or prog["fee_type"]
    return {
        "facility": prog["facility"],
        "function": prog["function"],
        "business_area": prog["business_area"],
        "unit_business": prog["unit_business"],
        "program": rec.program,
        "month": f"{rec.day:%Y-%m}",
        "quarter": f"{rec.day.year}-Q{(rec.day.month - 1) // 3 + 1}",
        "year": str(rec.day.year),
        "gender": person.get("gender") or "unknown",
        "age_band": person.get("band") or age_band(person.get("birth"), as_of) or "unknown",
        "neighbourhood": person.get("hood") or "unknown",
        "fee_type": fee,
    }


def count_many(
    data: RawData,
    *,
    months: Iterable[tuple[int, int]],
    as_of: date,
    dim_sets: list[tuple[str, ...]],
    keep: Callable[[dict[str, str]], bool] = lambda _: True,
    days_between: tuple[date, date] | None = None,
) -> dict[tuple[str, ...], dict[tuple[str, ...], tuple[int, int, int, int]]]:
    """(unique persons, person-visits, cases, operating days) per group, for several groupings
    in one pass. Operating days are the distinct service days with any counted record."""
    persons: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    visits: Counter[tuple[Any, ...]] = Counter()
    cases: Counter[tuple[Any, ...]] = Counter()
    sessions: dict[tuple[Any, ...], set[tuple[str, date]]] = defaultdict(set)
    days: dict[tuple[Any, ...], set[date]] = defaultdict(set)
    groups: set[tuple[Any, ...]] = set()
    for month in months:
        for rec in data.by_month.get(month, []):
            if days_between and not days_between[0] <= rec.day <= days_between[1]:
                continue
            prog = data.programs.get(rec.program)
            if prog is None or not prog["in_figures"]:
                continue
            attrs = attributes(data, rec, as_of)
            if not keep(attrs):
                continue
            person = data.persons.get(rec.person_ref, {}).get("id") or rec.person_ref
            for dims in dim_sets:
                key = (dims, tuple(attrs[d] for d in dims))
                groups.add(key)
                days[key].add(rec.day)
                if prog["counts_unique"]:
                    persons[key].add(person)
                if prog["visit_unit"] == "member_day":
                    visits[key] += 1
                elif prog["visit_unit"] == "attendance":
                    visits[key] += rec.attendances
                if prog["case_unit"] == "session_day":
                    sessions[key].add((rec.program, rec.day))
                elif prog["case_unit"] == "member_day":
                    cases[key] += 1
                elif prog["case_unit"] == "attendance":
                    cases[key] += rec.attendances
    result: dict[tuple[str, ...], dict[tuple[str, ...], tuple[int, int, int, int]]] = {
        dims: {} for dims in dim_sets
    }
    for key in groups:
        result[key[0]][key[1]] = (
            len(persons[key]),
            visits[key],
            cases[key] + len(sessions[key]),
            len(days[key]),
        )
    return result


def count(
    data: RawData,
    *,
    months: Iterable[tuple[int, int]],
    as_of: date,
    dims: list[str],
    keep: Callable[[dict[str, str]], bool] = lambda _: True,
    days_between: tuple[date, date] | None = None,
) -> dict[tuple[str, ...], tuple[int, int, int, int]]:
    """(unique persons, person-visits, cases, operating days) per group of `dims`."""
    wanted = tuple(dims)
    return count_many(
        data,
        months=months,
        as_of=as_of,
        dim_sets=[wanted],
        keep=keep,
        days_between=days_between,
    )[wanted]
