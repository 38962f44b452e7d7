"""The quarterly performance report in the layout of the centers' forms (figures 2-5 … 2-14)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from broker.vocabulary import FUNCTION_LABELS, Function
from ingest_api.figures.const import Dim, Source
from ingest_api.figures.engine import Period, Scope, compute_sets, quarter_periods
from ingest_api.figures.models import (
    Achievement,
    Block,
    FacilityFigures,
    MonthFigures,
    QuarterlyReport,
    ReportRow,
)
from ingest_api.registry.const import CITY
from ingest_api.registry.models import Targets

# Dimensions that identify a row of each level.
_LEVEL_DIMS: dict[str, tuple[Dim, ...]] = {
    "total": (),
    "facility": ("facility",),
    "function": ("function",),
    "business_area": ("function", "business_area"),
    "unit_business": ("function", "business_area", "unit_business"),
    "program": ("program",),
}
_SPLIT_FIELDS = {"M": "male", "F": "female", "paid": "paid", "reduced": "reduced", "free": "free"}


@dataclass(frozen=True, slots=True)
class _ProgramInfo:
    """What the report needs of a program."""

    program_id: str
    facility_id: str
    name: str
    function: str
    business_area: str
    unit_business: str
    fee_type: str
    targets: Targets
    team: str = ""
    manager: str = ""
    indicator: str = ""
    operating_form: str = ""


def _programs(
    conn: psycopg.Connection[Any], *, facility_id: str | None, year: int
) -> list[_ProgramInfo]:
    """The programs that count in figures, with their targets for the year."""
    rows = conn.execute(
        "SELECT p.program_id, p.facility_id, p.name, p.function, p.business_area,"
        " p.unit_business, p.fee_type, t.unique_persons, t.person_visits, t.cases,"
        " t.unique_persons_male, t.unique_persons_female, p.team, p.manager, p.indicator,"
        " p.operating_form"
        " FROM programs p JOIN counting_rules r ON r.rule_id = p.rule_id AND r.in_figures"
        " LEFT JOIN program_targets t ON t.program_id = p.program_id AND t.year = %s"
        " WHERE %s::text IS NULL OR p.facility_id = %s"
        " ORDER BY p.facility_id, p.function, p.business_area, p.unit_business, p.program_id",
        (year, facility_id, facility_id),
    ).fetchall()
    return [
        _ProgramInfo(
            program_id=r[0],
            facility_id=r[1],
            name=r[2],
            function=r[3],
            business_area=r[4],
            unit_business=r[5],
            fee_type=r[6],
            targets=Targets(
                unique_persons=r[7],
                person_visits=r[8],
                cases=r[9],
                unique_persons_male=r[10],
                unique_persons_female=r[11],
            ),
            team=r[12],
            manager=r[13],
            indicator=r[14],
            operating_form=r[15],
        )
        for r in rows
    ]


def _node_targets(conn: psycopg.Connection[Any], *, year: int) -> dict[tuple[str, str], Targets]:
    """Explicit targets of hierarchy nodes, by (facility or '*', node)."""
    rows = conn.execute(
        "SELECT facility_id, node, unique_persons, person_visits, cases, unique_persons_male,"
        " unique_persons_female FROM node_targets WHERE year = %s",
        (year,),
    ).fetchall()
    return {
        (r[0], r[1]): Targets(
            unique_persons=r[2],
            person_visits=r[3],
            cases=r[4],
            unique_persons_male=r[5],
            unique_persons_female=r[6],
        )
        for r in rows
    }


def _sum_targets(explicit: Targets | None, children: list[_ProgramInfo]) -> Targets:
    """A node's target: explicit where set; else the sum of its programs' for visits and cases.

    Unique persons are never summed (a person in two programs is one person), so a node has a
    unique-person target (in all, or by gender) only when one was set for it.
    """

    def total(name: str) -> int | None:
        values = [getattr(p.targets, name) for p in children]
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    return Targets(
        unique_persons=explicit.unique_persons if explicit else None,
        person_visits=(
            explicit.person_visits
            if explicit and explicit.person_visits is not None
            else total("person_visits")
        ),
        cases=explicit.cases if explicit and explicit.cases is not None else total("cases"),
        unique_persons_male=explicit.unique_persons_male if explicit else None,
        unique_persons_female=explicit.unique_persons_female if explicit else None,
    )


def total_target(conn: psycopg.Connection[Any], *, facility_id: str | None, year: int) -> Targets:
    """The yearly target of a facility's (or the city's) total row, exactly as the report
    sets it, without counting any figure (the figures pages show it beside their months)."""
    programs = _programs(conn, facility_id=facility_id, year=year)
    explicit = _node_targets(conn, year=year)
    return _sum_targets(explicit.get((facility_id or CITY, "facility")), programs)


def _shared(children: list[_ProgramInfo], name: str) -> str:
    """A text every program below has in common (team, manager, …), else empty."""
    values = {getattr(p, name) for p in children}
    return values.pop() if len(values) == 1 else ""


def _rate(actual: int, target: int | None) -> float | None:
    """Achievement in percent, one decimal; None without a positive target."""
    if not target:
        return None
    return round(actual * 100 / target, 1)


def build_quarterly_report(
    conn: psycopg.Connection[Any],
    *,
    facility_id: str | None,
    year: int,
    quarter: int,
    source: Source = "rollup",
) -> QuarterlyReport:
    """The quarterly report of a facility (or of the city with facility_id None).

    A pure read: the rollup is kept current by the ingest's background refresh (or by the
    caller, as `welfare report` does), never by asking for a report.
    """
    if quarter not in (1, 2, 3, 4):
        raise ValueError("quarter must be 1-4")
    if facility_id is not None:
        found = conn.execute(
            "SELECT name FROM facilities WHERE facility_id = %s", (facility_id,)
        ).fetchone()
        if found is None:
            raise LookupError(f"unknown facility {facility_id!r}")
        facility_name = str(found[0])
    else:
        facility_name = "시 전체"
    periods = quarter_periods(year=year, quarter=quarter)
    programs = _programs(conn, facility_id=facility_id, year=year)
    explicit = _node_targets(conn, year=year)
    levels = (
        ("total", "function", "business_area", "unit_business", "program")
        if facility_id is not None
        else ("total", "facility", "function", "business_area", "unit_business")
    )
    scope = Scope(facility_id=facility_id)
    cells = _cells(conn, periods=periods, levels=levels, scope=scope, source=source)
    months = [
        Period.months(f"{year}-{m:02d}", date(year, m, 1), date(year, m, 1))
        for m in range(1, 3 * quarter + 1)
    ]
    by_month = {
        r.key["period"]: r
        for r in compute_sets(conn, periods=months, sets=[("period",)], scope=scope, source=source)[
            ("period",)
        ]
    }
    monthly = [
        MonthFigures(
            month=p.label,
            **(
                by_month[p.label].figures().model_dump(exclude={"operating_days"})
                if p.label in by_month
                else {}
            ),
        )
        for p in months
    ]
    rows: list[ReportRow] = []
    owner = facility_id or CITY

    def add(
        level: str,
        key: tuple[str, ...],
        label: str,
        children: list[_ProgramInfo],
        node: str,
        fee: str | None = None,
        target_owner: str = owner,
        info: dict[str, str | None] | None = None,
        item_no: str = "",
    ) -> None:
        if level == "program":
            target = children[0].targets
        else:
            target = _sum_targets(explicit.get((target_owner, node)), children)
        blocks = {p.label: cells.get((level, key, p.label), Block()) for p in periods[:4]}
        for block in blocks.values():
            days = block.total.operating_days
            block.daily_average = round(block.total.person_visits / days, 1) if days else None
        ytd = cells.get((level, key, periods[4].label), Block()).total
        rows.append(
            ReportRow(
                level=level,
                item_no=item_no,
                label=label,
                fee_type=fee,
                team=_shared(children, "team"),
                manager=_shared(children, "manager"),
                indicator=_shared(children, "indicator") if level == "program" else "",
                operating_form=_shared(children, "operating_form"),
                programs=len(children),
                periods=blocks,
                target=target,
                year_to_date=ytd,
                achievement=Achievement(
                    unique_persons=_rate(ytd.unique_persons, target.unique_persons),
                    person_visits=_rate(ytd.person_visits, target.person_visits),
                    cases=_rate(ytd.cases, target.cases),
                ),
                **(info or {}),
            )
        )

    add(
        "total",
        (),
        f"{facility_name} 합계",
        programs,
        "facility",
        info={"facility_id": facility_id},
    )
    if facility_id is None:
        names = dict(conn.execute("SELECT facility_id, name FROM facilities").fetchall())
        for fid in sorted({p.facility_id for p in programs}):
            mine = [p for p in programs if p.facility_id == fid]
            add(
                "facility",
                (fid,),
                f"{names.get(fid, fid)} 합계",
                mine,
                "facility",
                target_owner=fid,
                info={"facility_id": fid},
            )
    tree: dict[str, dict[str, dict[str, list[_ProgramInfo]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for p in programs:
        tree[p.function][p.business_area][p.unit_business].append(p)
    present = [f for f in Function if f in tree]
    for f_no, function in enumerate(present, start=1):
        in_function = [p for a in tree[function].values() for u in a.values() for p in u]
        add(
            "function",
            (function,),
            f"{FUNCTION_LABELS[function]} 소계",
            in_function,
            f"function:{function}",
            info={"facility_id": facility_id, "function": function.value},
            item_no=str(f_no),
        )
        for a_no, area in enumerate(sorted(tree[function]), start=1):
            in_area = [p for u in tree[function][area].values() for p in u]
            add(
                "business_area",
                (function, area),
                f"{area} 소계",
                in_area,
                f"area:{function}/{area}",
                info={
                    "facility_id": facility_id,
                    "function": function.value,
                    "business_area": area,
                },
                item_no=f"{f_no}-{a_no}",
            )
            for u_no, unit in enumerate(sorted(tree[function][area]), start=1):
                in_unit = tree[function][area][unit]
                unit_info: dict[str, str | None] = {
                    "facility_id": facility_id,
                    "function": function.value,
                    "business_area": area,
                    "unit_business": unit,
                }
                add(
                    "unit_business",
                    (function, area, unit),
                    f"{unit} 소계",
                    in_unit,
                    f"unit:{function}/{area}/{unit}",
                    info=unit_info,
                    item_no=f"{f_no}-{a_no}-{u_no}",
                )
                if "program" not in levels:
                    continue
                for p_no, p in enumerate(in_unit, start=1):
                    add(
                        "program",
                        (p.program_id,),
                        p.name,
                        [p],
                        f"program:{p.program_id}",
                        fee=p.fee_type,
                        info={**unit_info, "program_id": p.program_id},
                        item_no=f"{f_no}-{a_no}-{u_no}-{p_no}",
                    )
    first = periods[3].first_day
    last = periods[3].last_day
    return QuarterlyReport(
        facility_id=facility_id,
        facility_name=facility_name,
        year=year,
        quarter=quarter,
        months=[p.label for p in periods[:3]],
        period_labels={
            **{p.label: f"{p.first_month.month}월" for p in periods[:3]},
            periods[3].label: f"{quarter}분기 계",
        },
        generated_from=source,
        first_day=first,
        last_day=last,
        rows=rows,
        monthly=monthly,
    )


def _cells(
    conn: psycopg.Connection[Any],
    *,
    periods: list[Period],
    levels: tuple[str, ...],
    scope: Scope,
    source: Source,
) -> dict[tuple[str, tuple[str, ...], str], Block]:
    """Every cell of the report: (level, row key, period) -> block of the form's columns."""
    blocks: dict[tuple[str, tuple[str, ...], str], Block] = defaultdict(Block)
    # Two passes over the rows: totals of every level in every period (the year to date feeds
    # the achievement rate), then the 남/여 and fee-type splits of the months and the quarter.
    passes: tuple[tuple[list[Period], tuple[Dim | None, ...]], ...] = (
        (periods, (None,)),
        (periods[:4], ("gender", "fee_type")),
    )
    for wanted, splits in passes:
        sets: dict[tuple[Dim, ...], tuple[str, Dim | None]] = {}
        for level in levels:
            for split in splits:
                dims: tuple[Dim, ...] = ("period", *_LEVEL_DIMS[level])
                sets[(*dims, split) if split else dims] = (level, split)
        found = compute_sets(conn, periods=wanted, sets=list(sets), scope=scope, source=source)
        for dims, rows in found.items():
            level, split = sets[dims]
            for row in rows:
                key = tuple(row.key[d] for d in _LEVEL_DIMS[level])
                block = blocks[(level, key, row.key["period"])]
                if split is None:
                    block.total = row.figures()
                elif row.key[split] in _SPLIT_FIELDS:
                    setattr(block, _SPLIT_FIELDS[row.key[split]], row.figures())
    return blocks


def facility_figures(
    conn: psycopg.Connection[Any],
    *,
    period: Period,
    facility_id: str | None = None,
    source: Source = "rollup",
) -> list[FacilityFigures]:
    """Each facility's figures and its programs' over a period (the overview and the demo).

    Counted by the engine like every other figure: the counting rules apply, excluded programs
    do not count, and a member counted at two of a facility's programs is one unique person.
    """
    scope = Scope(facility_id=facility_id)
    found = compute_sets(
        conn,
        periods=[period],
        sets=[("facility",), ("facility", "program")],
        scope=scope,
        source=source,
    )
    rows = [
        FacilityFigures(facility_id=r.key["facility"], program_id=None, **r.figures().model_dump())
        for r in found[("facility",)]
    ] + [
        FacilityFigures(
            facility_id=r.key["facility"], program_id=r.key["program"], **r.figures().model_dump()
        )
        for r in found[("facility", "program")]
    ]
    rows.sort(key=lambda r: (r.facility_id, r.program_id is not None, r.program_id or ""))
    return rows
