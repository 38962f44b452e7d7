"""A year of generated attendance: every figure of every quarterly report equals a direct count."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import pytest

from ingest_api.figures.engine import quarter_periods
from ingest_api.figures.models import Block, Figures, QuarterlyReport, ReportRow
from ingest_api.figures.reports import build_quarterly_report
from tests.ingest_api.figures import oracle
from tests.ingest_api.figures.conftest import YEAR
from welfare.sample.city import CitySample

_ROW_DIMS: dict[str, tuple[str, ...]] = {
    "total": (),
    "facility": ("facility",),
    "function": ("function",),
    "business_area": ("function", "business_area"),
    "unit_business": ("function", "business_area", "unit_business"),
    "program": ("program",),
}
_SPLIT_PARTS = {"M": "male", "F": "female", "paid": "paid", "reduced": "reduced", "free": "free"}


def _row_key(row: ReportRow) -> tuple[str, ...]:
    """The row's values of its level's dimensions."""
    values = {
        "facility": row.facility_id,
        "function": row.function,
        "business_area": row.business_area,
        "unit_business": row.unit_business,
        "program": row.program_id,
    }
    return tuple(str(values[d]) for d in _ROW_DIMS[row.level])


def _expected_blocks(
    data: oracle.RawData,
    *,
    facility: str | None,
    months: list[tuple[int, int]],
    as_of: date,
    levels: set[str],
) -> dict[str, dict[tuple[str, ...], Block]]:
    """The oracle's blocks of every row of the given levels for one period."""

    def keep(attrs: dict[str, str]) -> bool:
        return facility is None or attrs["facility"] == facility

    dim_sets = [
        _ROW_DIMS[level] + ((split,) if split else ())
        for level in levels
        for split in (None, "gender", "fee_type")
    ]
    counted = oracle.count_many(data, months=months, as_of=as_of, dim_sets=dim_sets, keep=keep)
    result: dict[str, dict[tuple[str, ...], Block]] = {}
    for level in levels:
        blocks = result.setdefault(level, {})
        width = len(_ROW_DIMS[level])
        for split in (None, "gender", "fee_type"):
            for key, (u, v, c, d) in counted[
                _ROW_DIMS[level] + ((split,) if split else ())
            ].items():
                block = blocks.setdefault(key[:width], Block())
                figures = Figures(unique_persons=u, person_visits=v, cases=c, operating_days=d)
                if split is None:
                    block.total = figures
                elif key[-1] in _SPLIT_PARTS:
                    setattr(block, _SPLIT_PARTS[key[-1]], figures)
    return result


def _check_report(report: QuarterlyReport, data: oracle.RawData, sample: CitySample) -> int:
    """Compare every cell of a report with the oracle; returns the number of figures checked."""
    periods = quarter_periods(year=report.year, quarter=report.quarter)
    checked = 0
    by_level: dict[tuple[str, str], dict[tuple[str, ...], Block]] = {}
    for period in periods:
        months = [
            (period.first_month.year, m)
            for m in range(period.first_month.month, period.last_month.month + 1)
        ]
        expected = _expected_blocks(
            data,
            facility=report.facility_id,
            months=months,
            as_of=period.as_of,
            levels={r.level for r in report.rows},
        )
        for level, blocks in expected.items():
            for block in blocks.values():
                days = block.total.operating_days
                block.daily_average = round(block.total.person_visits / days, 1) if days else None
            by_level[(level, period.label)] = blocks
    targets = {sp.program.program_id: sp.targets for sp in sample.programs}
    programs = {sp.program.program_id: sp.program for sp in sample.programs}
    counted = {p for p, info in data.programs.items() if info["in_figures"]}
    for row in report.rows:
        key = _row_key(row)
        below = [
            p
            for p in counted
            if (report.facility_id is None or data.programs[p]["facility"] == report.facility_id)
            and all(
                str(data.programs[p][d]) == v
                for d, v in zip(_ROW_DIMS[row.level], key, strict=True)
                if d != "program"
            )
            and (row.level != "program" or p == row.program_id)
        ]
        assert row.programs == len(below), row.label
        if row.level == "program":
            program = programs[str(row.program_id)]
            assert (row.team, row.manager, row.indicator, row.operating_form) == (
                program.team,
                program.manager,
                program.indicator,
                program.operating_form,
            )
        for period in periods[:4]:
            want = by_level[(row.level, period.label)].get(key, Block())
            assert row.periods[period.label] == want, (row.label, period.label)
            checked += 18
        ytd = by_level[(row.level, periods[4].label)].get(key, Block()).total
        assert row.year_to_date == ytd, row.label
        checked += 3
        if row.level == "program":
            t = targets[str(row.program_id)]
            assert row.target.model_dump() == t.model_dump()
            if t.person_visits:
                assert row.achievement.person_visits == round(
                    ytd.person_visits * 100 / t.person_visits, 1
                )
        else:
            # Unique persons are never summed up the hierarchy: no derived target.
            assert row.target.unique_persons is None
    return checked


@pytest.mark.parametrize("quarter", [1, 2, 3, 4])
def test_every_figure_of_the_year_matches_a_direct_count(
    city_conn: psycopg.Connection[Any], city_year: CitySample, quarter: int
) -> None:
    """Each center's and the city's report for every quarter equals the oracle, cell by cell."""
    data = oracle.load(city_conn)
    checked = 0
    for facility in ("A", "B", "C", "D", "E", None):
        report = build_quarterly_report(city_conn, facility_id=facility, year=YEAR, quarter=quarter)
        assert report.rows[0].level == "total"
        assert report.rows[0].periods[f"{YEAR}-Q{quarter}"].total.person_visits > 0
        checked += _check_report(report, data, city_year)
    assert checked > 5000


def test_rollup_and_raw_give_the_same_report(city_conn: psycopg.Connection[Any]) -> None:
    """The incrementally refreshed rollup and the raw rows give identical reports."""
    from_rollup = build_quarterly_report(city_conn, facility_id=None, year=YEAR, quarter=3)
    from_raw = build_quarterly_report(
        city_conn, facility_id=None, year=YEAR, quarter=3, source="raw"
    )
    assert from_rollup.rows == from_raw.rows


def test_unique_persons_are_not_summed(city_conn: psycopg.Connection[Any]) -> None:
    """The quarter's unique persons are fewer than the sum of the months' (regulars come back)."""
    report = build_quarterly_report(city_conn, facility_id="B", year=YEAR, quarter=2)
    total = report.rows[0]
    monthly = sum(total.periods[m].total.unique_persons for m in report.months)
    quarterly = total.periods[f"{YEAR}-Q2"].total
    assert 0 < quarterly.unique_persons < monthly
    # Person-visits, on the other hand, do add up over the months.
    assert quarterly.person_visits == sum(
        total.periods[m].total.person_visits for m in report.months
    )


def test_a_person_registered_at_two_centers_counts_once_for_the_city(
    city_conn: psycopg.Connection[Any],
) -> None:
    """Two member numbers with one name and birth date are one person in the city's figures."""
    from ingest_api.figures.engine import Period, Scope, compute

    row = city_conn.execute(
        "SELECT a.member_ref, b.member_ref FROM members a JOIN members b"
        " ON a.person_id = b.person_id AND a.facility_id < b.facility_id LIMIT 1"
    ).fetchone()
    assert row is not None
    year = Period.months("y", date(YEAR, 1, 1), date(YEAR, 12, 1))
    both = [compute(city_conn, periods=[year], dims=[], scope=Scope(program_id=None))[0]]
    per_facility = compute(city_conn, periods=[year], dims=["facility"])
    assert both[0].unique_persons < sum(r.unique_persons for r in per_facility)


def test_late_events_are_counted_after_refresh(pg_server: Any) -> None:
    """An event that arrives after a refresh, for an old day, is counted at the next refresh."""
    from ingest_api.figures import rollup
    from tests.ingest_api.figures.conftest import KEY, fresh_database
    from tests.security_helpers import CIPHER
    from welfare.sample.city import build_city, load_events, load_registry

    sample = build_city(year=YEAR, members_per_center=3)
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        load_registry(conn, sample=sample, key=KEY, cipher=CIPHER)
        january = [e for e in sample.events if e[4].month == 1]
        load_events(conn, events=january[:-50])
        conn.commit()
        rollup.refresh(conn)
        first = build_quarterly_report(conn, facility_id=None, year=YEAR, quarter=1)
        again = rollup.refresh(conn)
        if again.path == "postgres":  # continuous aggregates do not report refreshed days
            assert again.days == 0  # nothing new: the refresh is a no-op
        # The continuous-aggregate path runs wherever TimescaleDB is preloaded.
        assert again.path == ("timescaledb" if pg_server.timescaledb else "postgres")
        load_events(conn, events=january[-50:])
        conn.commit()
        stale = build_quarterly_report(conn, facility_id=None, year=YEAR, quarter=1)
        rollup.refresh(conn)
        second = build_quarterly_report(conn, facility_id=None, year=YEAR, quarter=1)
        raw = build_quarterly_report(conn, facility_id=None, year=YEAR, quarter=1, source="raw")
    assert second.rows == raw.rows
    assert second.rows[0].periods[f"{YEAR}-01"] != first.rows[0].periods[f"{YEAR}-01"]
    if not pg_server.timescaledb:
        # Reading a report never writes: before the refresh the late rows are not in it yet.
        assert stale.rows == first.rows
