"""Statistics equal the direct count: users by group, programs per person, duplicates."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import Any

import psycopg

from ingest_api.figures import rollup
from ingest_api.figures.statistics import duplicate_service, programs_per_person, statistics
from tests.ingest_api.figures import oracle
from tests.ingest_api.figures.conftest import YEAR


def test_statistics_match_the_direct_count(city_conn: psycopg.Connection[Any]) -> None:
    """Users by gender, age band, neighbourhood and program, and programs per person, for D."""
    rollup.refresh(city_conn)
    first, last = date(YEAR, 4, 1), date(YEAR, 9, 1)
    stats = statistics(city_conn, facility_id="D", first_month=first, last_month=last)
    data = oracle.load(city_conn)
    months = [(YEAR, m) for m in range(4, 10)]
    as_of = date(YEAR, 9, 30)

    def keep(a: dict[str, str]) -> bool:
        return a["facility"] == "D"

    for dim, got in (
        ("gender", stats.by_gender),
        ("age_band", stats.by_age_band),
        ("neighbourhood", stats.by_neighbourhood),
        ("program", stats.by_program),
    ):
        expected = oracle.count(data, months=months, as_of=as_of, dims=[dim], keep=keep)
        assert {r.value: r.users for r in got} == {k[0]: v[0] for k, v in expected.items() if v[0]}
    # Programs per person, counted directly from the records.
    used: dict[str, set[str]] = defaultdict(set)
    for month in months:
        for rec in data.by_month.get(month, []):
            prog = data.programs[rec.program]
            if prog["facility"] == "D" and prog["in_figures"] and prog["counts_unique"]:
                person = data.persons.get(rec.person_ref, {}).get("id") or rec.person_ref
                used[person].add(rec.program)
    histogram = Counter(len(p) for p in used.values())
    assert {p.programs: p.persons for p in stats.programs_per_person} == dict(histogram)
    assert stats.total_users == len(used)
    assert (
        programs_per_person(
            city_conn, facility_id="D", first_month=first, last_month=last, source="raw"
        )
        == stats.programs_per_person
    )


def test_duplicate_service_lists_people_at_two_centers(city_conn: psycopg.Connection[Any]) -> None:
    """Everyone served by one kind of service at two centers is listed once, with the centers."""
    rollup.refresh(city_conn)
    found = duplicate_service(city_conn, first_month=date(YEAR, 1, 1), last_month=date(YEAR, 12, 1))
    data = oracle.load(city_conn)
    served: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in data.records:
        prog = data.programs[rec.program]
        if prog["in_figures"] and prog["counts_unique"]:
            person = data.persons.get(rec.person_ref, {}).get("id") or rec.person_ref
            served[(person, prog["unit_business"])].add(prog["facility"])
    expected = {(p, k): sorted(f) for (p, k), f in served.items() if len(f) > 1}
    assert {(d.person_id, d.kind): d.facilities for d in found} == expected
    assert found, "the sample registers some people at two centers"
