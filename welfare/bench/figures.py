"""Figures: the quarterly report and a year's unique persons from the rollups vs. the raw events.

The city is the figures engine's own sample (`welfare.sample.city`: five centers, programs,
counting rules, targets, visitors, practicum) plus generated members and attendance written
with SQL (`generate_series`) up to the asked size: 20,000 members and 10 million events in the
full run. The rollups are brought up to date once (`rollup.refresh`, timed on its own), then
each query runs from the rollup and from the raw events in the same run, and both answers are
compared.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from welfare.bench.results import Report, Row, ratio

_LOG = logging.getLogger(__name__)
GROUP = "3. Figures (city, one year)"
YEAR = 2025


@dataclass(frozen=True)
class FiguresScale:
    """Counts of one run."""

    members: int = 20_000
    events: int = 1_000_000
    sample_members_per_center: int = 30
    chunks: int = 12
    repeats: int = 3
    raw_budget_s: float = 90.0


QUICK = FiguresScale(
    members=100,
    events=3_000,
    sample_members_per_center=3,
    chunks=2,
    repeats=1,
    raw_budget_s=30.0,
)

_PERSONS = """
INSERT INTO persons (person_id)
SELECT 'PB-' || g FROM generate_series(1, %(n)s) AS g
"""
_MEMBERS = """
INSERT INTO members (member_ref, facility_id, person_id, display_name, gender, birth_month,
                     neighbourhood)
SELECT 'XB-' || g, f.ids[g %% array_length(f.ids, 1) + 1], 'PB-' || g, '회원',
       CASE WHEN g %% 3 = 0 THEN 'M' ELSE 'F' END,
       date_trunc('month', date '1935-01-01' + (g * 37 %% 28000))::date,
       (ARRAY['우만1동','우만2동','인계동','매탄1동','매탄2동','영통1동','권선1동'])[g %% 7 + 1]
FROM generate_series(1, %(n)s) AS g,
     (SELECT array_agg(facility_id ORDER BY facility_id) AS ids FROM facilities) AS f
"""
# Each member in one or two of their center's programs that count in the figures.
_ENROL = """
WITH progs AS (
    SELECT p.facility_id, array_agg(p.program_id ORDER BY p.program_id) AS ids
    FROM programs p JOIN counting_rules cr ON cr.rule_id = p.rule_id
    WHERE cr.in_figures AND cr.counts_unique
    GROUP BY p.facility_id
)
INSERT INTO enrolments (member_ref, program_id)
SELECT DISTINCT m.member_ref,
       pr.ids[(n.k + substr(m.member_ref, 4)::int) % array_length(pr.ids, 1) + 1]
FROM members m JOIN progs pr USING (facility_id),
     generate_series(0, 1) AS n(k)
WHERE m.member_ref LIKE 'XB-%' AND (n.k = 0 OR substr(m.member_ref, 4)::int % 2 = 0)
ON CONFLICT DO NOTHING
"""
# Generated enrolments in a fixed order, each with a shift of its days over the year.
_BENCH_ENROL = """
CREATE TEMP TABLE bench_enrol AS
SELECT row_number() OVER (ORDER BY e.member_ref, e.program_id) AS ord, e.member_ref,
       e.program_id, m.facility_id, substr(e.member_ref, 4)::int % 365 AS shift
FROM enrolments e JOIN members m USING (member_ref)
WHERE e.member_ref LIKE 'XB-%'
"""
# One accepted tap at noon on `days` days per enrolment spread evenly over the year (day j
# after the enrolment's shift is taken when ceil((j+1)·days/365) > ceil(j·days/365)), written
# day by day with time-ordered UUIDv7-shaped ids (as kiosks make them), so the indexes grow at
# their ends.
_EVENTS = """
INSERT INTO attendance_events (event_id, occurred_at, facility_id, device_id, service_date,
                               program_id, member_ref, method, outcome)
SELECT (lpad(to_hex((extract(epoch FROM t.at) * 1000)::bigint), 12, '0') || '70008'
        || lpad(to_hex(e.ord), 15, '0'))::uuid,
       t.at, e.facility_id, 'gen-1', t.day, e.program_id, e.member_ref, 'card', 'accepted'
FROM generate_series(%(first)s::int, %(last)s::int) AS g(i)
CROSS JOIN LATERAL (
    SELECT %(y0)s::date + g.i AS day,
           ((%(y0)s::date + g.i) + time '12:00') AT TIME ZONE 'Asia/Seoul' AS at
) AS t
JOIN bench_enrol AS e
  ON (((g.i - e.shift + 365) %% 365 + 1) * %(days)s + 364) / 365
     > (((g.i - e.shift + 365) %% 365) * %(days)s + 364) / 365
ORDER BY g.i, e.ord
"""


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time (s) of `repeats` calls and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def _bounded(
    conn: psycopg.Connection[Any], fn: Callable[[], Any], budget_s: float
) -> tuple[float | None, Any]:
    """Time one call, cancelling its query after `budget_s` (then (None, None))."""
    timer = threading.Timer(budget_s, conn.cancel)
    timer.start()
    started = time.perf_counter()
    try:
        result = fn()
    except psycopg.errors.QueryCanceled:
        conn.rollback()
        return None, None
    finally:
        timer.cancel()
    return time.perf_counter() - started, result


def _load(url: str, scale: FiguresScale) -> dict[str, Any]:
    """The registry and the events; returns counts and timings."""
    from ingest_api.core.fieldcrypto import FieldCipher
    from welfare.sample.city import build_city, load_events, load_registry

    started = time.perf_counter()
    sample = build_city(year=YEAR, members_per_center=scale.sample_members_per_center)
    with psycopg.connect(url) as conn:
        load_registry(
            conn,
            sample=sample,
            key=b"bench-registry-key-of-32-bytes!!",
            cipher=FieldCipher([b"bench-data-key-of-at-least-32-bytes!!"]),
        )
        load_events(conn, events=sample.events)
        conn.commit()
        conn.execute(_PERSONS, {"n": scale.members})
        conn.execute(_MEMBERS, {"n": scale.members})
        conn.execute(_ENROL)
        row = conn.execute(
            "SELECT count(*) FROM enrolments WHERE member_ref LIKE 'XB-%'"
        ).fetchone()
        enrolments = int(row[0]) if row else 0
        conn.commit()
        conn.execute(_BENCH_ENROL)
        days = max(1, min(365, -(-(scale.events - len(sample.events)) // max(enrolments, 1))))
        bounds = [round(365 * k / scale.chunks) for k in range(scale.chunks + 1)]
        for first, last in itertools.pairwise(bounds):
            conn.execute(
                _EVENTS, {"y0": f"{YEAR}-01-01", "days": days, "first": first, "last": last - 1}
            )
            conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT count(*) FROM attendance_events").fetchone()
        events = int(row[0]) if row else 0
    return {
        "members": scale.members + len(sample.members),
        "enrolments": enrolments,
        "events": events,
        "load_s": time.perf_counter() - started,
    }


def run(work: Path, url_factory: Callable[[str], str], scale: FiguresScale, report: Report) -> None:
    """Measure the figures queries and add the rows to `report`."""
    del work
    try:
        from ingest_api.figures import engine, reports, rollup
        from ingest_api.figures.const import Source
    except ImportError as exc:
        _not_measured(report, f"rollups not landed ({exc})")
        return
    try:
        url = url_factory("figures")
        loaded = _load(url, scale)
        with psycopg.connect(url) as conn:
            refresh_s, refreshed = _timed(lambda: rollup.refresh(conn), 1)
            conn.execute("ANALYZE")
            conn.commit()

            def quarterly(source: Source) -> Any:
                return reports.build_quarterly_report(
                    conn, facility_id=None, year=YEAR, quarter=4, source=source
                )

            year = [engine.Period.months(str(YEAR), date(YEAR, 1, 1), date(YEAR, 12, 1))]

            def unique(source: Source) -> Any:
                return engine.compute(conn, periods=year, dims=[], source=source)

            q_roll_s, q_roll = _timed(lambda: quarterly("rollup"), 1)
            q_raw_s, q_raw = _bounded(conn, lambda: quarterly("raw"), scale.raw_budget_s)
            u_roll_s, u_roll = _timed(lambda: unique("rollup"), scale.repeats)
            u_raw_s, u_raw = _bounded(conn, lambda: unique("raw"), scale.raw_budget_s)
    except Exception as exc:  # one failing part must not stop the whole benchmark run
        _LOG.exception("figures benchmark failed")
        _not_measured(report, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    q_same = None if q_raw is None else _dump(q_roll) == _dump(q_raw)
    u_same = None if u_raw is None else _dump(u_roll) == _dump(u_raw)
    persons = u_roll[0].unique_persons if u_roll else None
    report.details["figures"] = {
        "scale": scale.__dict__,
        **loaded,
        "refresh_s": refresh_s,
        "refresh": str(refreshed),
        "quarterly_rollup_s": q_roll_s,
        "quarterly_raw_s": q_raw_s,
        "year_unique_rollup_s": u_roll_s,
        "year_unique_raw_s": u_raw_s,
        "quarterly_same": q_same,
        "year_unique_same": u_same,
        "year_unique_persons": persons,
    }
    size = f"{loaded['events']:,} events, {loaded['members']:,} members, 5 centers"
    for name, roll_s, raw_s, same in (
        (
            f"city quarterly report {YEAR}-Q4 (all levels, months, quarter, YTD)",
            q_roll_s,
            q_raw_s,
            q_same,
        ),
        (f"city unique persons (실인원) of {YEAR}", u_roll_s, u_raw_s, u_same),
    ):
        r = ratio(raw_s, roll_s)
        if raw_s is None:  # cancelled: the ratio is at least budget / rollup time
            r = scale.raw_budget_s / roll_s
        checked = "not checked (raw cancelled)" if same is None else ("yes" if same else "**NO**")
        report.rows.append(
            Row(
                GROUP,
                f"{name}, from the rollup",
                roll_s * 1000,
                "ms",
                "raw events" if raw_s is not None else "raw events, cancelled at",
                (raw_s if raw_s is not None else scale.raw_budget_s) * 1000,
                r,
                "≤ 200 ms and ≥ 50× faster than raw",
                roll_s <= 0.2 and (r or 0) >= 50 and same is not False,
                f"{size}; same numbers: {checked}"
                + ("" if raw_s is not None else "; ratio is a lower bound")
                + (f"; {persons:,} persons" if "unique" in name and persons else ""),
            )
        )
    report.rows.append(
        Row(
            GROUP,
            "rollup refresh after the load (every day dirty)",
            refresh_s,
            "s",
            note=f"one-off; the load itself took {loaded['load_s']:.0f} s",
        )
    )


def _dump(value: Any) -> Any:
    """A comparable form of a report or a list of rows."""
    if isinstance(value, list):
        return [_dump(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if dump is None:
        return value
    data = dump(mode="json")
    if isinstance(data, dict):
        data.pop("generated_from", None)  # says which source; everything else must be equal
    return data


def _not_measured(report: Report, why: str) -> None:
    """Rows saying why the figures were not measured."""
    for name in ("city quarterly report, from the rollup", "city unique persons of a year"):
        report.rows.append(
            Row(
                GROUP,
                name,
                None,
                "ms",
                target="≤ 200 ms and ≥ 50× faster than raw",
                note=f"not measured: {why}",
            )
        )
