"""Figures: the city's and a center's quarterly report, the year's unique persons and one
program's month from the rollup (the figures cube) vs. the raw events, and freshness under load.

The city is the figures engine's own sample (`welfare.sample.city`: five centers, programs,
counting rules, targets, visitors, practicum) plus generated members and attendance written
with SQL (`generate_series`) up to the asked size (1 million events by default, 10 million
with --figures-events 10000000). The events' secondary indexes are dropped during the bulk
load and built again after it (a bulk load's usual order; the schema ends as migrated). The
rollups are brought up to date once (`rollup.refresh`, timed on its own), then each query runs
from the rollup — once cold (a new process's first question: the cube loads its months) and
then warm, the median of several — and from the raw events in the same run, and both answers
are compared field by field. Last, freshness: events are written at 5,000 events/s with the
ingest's own insert while the service's background refresher runs, and probe attendances are
timed from their commit until the day's figures and the quarterly report both count them.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

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
    repeats: int = 7
    raw_budget_s: float = 150.0
    fresh_rate: int = 5_000  # events/s written during the freshness run
    fresh_probes: int = 8


QUICK = FiguresScale(
    members=100,
    events=3_000,
    sample_members_per_center=3,
    chunks=2,
    repeats=1,
    raw_budget_s=30.0,
    fresh_rate=500,
    fresh_probes=2,
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
    """Median wall time (s) of `repeats` calls and the last result."""
    times = []
    result: Any = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


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
        # A bulk load: secondary indexes are built once afterwards, not row by row.
        indexes = [
            (str(name), str(definition))
            for name, definition in conn.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " JOIN pg_class c ON c.relname = i.indexname"
                " JOIN pg_index x ON x.indexrelid = c.oid"
                " WHERE i.tablename = 'attendance_events' AND NOT x.indisprimary"
            )
        ]
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.commit()
        conn.execute("SET synchronous_commit = off")
        days = max(1, min(365, -(-(scale.events - len(sample.events)) // max(enrolments, 1))))
        bounds = [round(365 * k / scale.chunks) for k in range(scale.chunks + 1)]
        for first, last in itertools.pairwise(bounds):
            conn.execute(
                _EVENTS, {"y0": f"{YEAR}-01-01", "days": days, "first": first, "last": last - 1}
            )
            conn.commit()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition.encode())  # as pg_indexes gives it: the migrated index
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


@dataclass
class _Measured:
    """One figure timed from the rollup (cold and warm) and from the raw events."""

    name: str
    cold_s: float
    warm_s: float
    raw_s: float | None
    same: bool | None
    note: str = ""


def _measure(
    conn: psycopg.Connection[Any],
    scale: FiguresScale,
    name: str,
    fn: Callable[[Any], Any],
    note: str = "",
) -> _Measured:
    """Cold (empty cube), warm (median) and raw timings of one figure, and whether they agree."""
    from ingest_api.figures import cube

    cube.forget_all()
    started = time.perf_counter()
    fn("rollup")
    cold_s = time.perf_counter() - started
    warm_s, from_rollup = _timed(lambda: fn("rollup"), scale.repeats)
    raw_s, from_raw = _bounded(conn, lambda: fn("raw"), scale.raw_budget_s)
    same = None if from_raw is None else _dump(from_rollup) == _dump(from_raw)
    return _Measured(name, cold_s, warm_s, raw_s, same, note)


def run(work: Path, url_factory: Callable[[str], str], scale: FiguresScale, report: Report) -> None:
    """Measure the figures queries and add the rows to `report`."""
    del work
    try:
        from ingest_api.figures import engine, reports, rollup
    except ImportError as exc:
        _not_measured(report, f"engine not importable ({exc})")
        return
    try:
        url = url_factory("figures")
        loaded = _load(url, scale)
        with psycopg.connect(url) as conn:
            refresh_s, refreshed = _timed(lambda: rollup.refresh(conn), 1)
            conn.execute("ANALYZE")
            conn.commit()
            busiest = conn.execute(
                "SELECT p.facility_id, m.program_id FROM figures_member_month m"
                " JOIN programs p USING (program_id) WHERE m.month = %s"
                " GROUP BY 1, 2 ORDER BY sum(m.attendances) DESC LIMIT 1",
                (date(YEAR, 12, 1),),
            ).fetchone()
            assert busiest is not None, "no events were generated"
            center, program = str(busiest[0]), str(busiest[1])
            year = [engine.Period.months(str(YEAR), date(YEAR, 1, 1), date(YEAR, 12, 1))]
            december = [engine.Period.months(f"{YEAR}-12", date(YEAR, 12, 1), date(YEAR, 12, 1))]
            measured = [
                _measure(
                    conn,
                    scale,
                    f"city quarterly report {YEAR}-Q4 (all levels, months, quarter, YTD)",
                    lambda source: reports.build_quarterly_report(
                        conn, facility_id=None, year=YEAR, quarter=4, source=source
                    ),
                ),
                _measure(
                    conn,
                    scale,
                    f"city unique persons (실인원) of {YEAR}",
                    lambda source: engine.compute(conn, periods=year, dims=[], source=source),
                ),
                _measure(
                    conn,
                    scale,
                    f"center {center}'s quarterly report {YEAR}-Q4 (down to programs)",
                    lambda source: reports.build_quarterly_report(
                        conn, facility_id=center, year=YEAR, quarter=4, source=source
                    ),
                ),
                _measure(
                    conn,
                    scale,
                    f"program {program}'s month {YEAR}-12 by 남/여",
                    lambda source: engine.compute(
                        conn,
                        periods=december,
                        dims=["gender"],
                        scope=engine.Scope(program_id=program),
                        source=source,
                    ),
                ),
            ]
            persons = engine.compute(conn, periods=year, dims=[])[0].unique_persons
        fresh = _freshness(url, scale, center=center)
    except Exception as exc:  # one failing part must not stop the whole benchmark run
        _LOG.exception("figures benchmark failed")
        _not_measured(report, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    report.details["figures"] = {
        "scale": scale.__dict__,
        **loaded,
        "refresh_s": refresh_s,
        "refresh": str(refreshed),
        "measured": [m.__dict__ for m in measured],
        "year_unique_persons": persons,
        "freshness": fresh,
    }
    size = f"{loaded['events']:,} events, {loaded['members']:,} members, 5 centers"
    targeted = {0, 1}  # the targets: the city's report and the year's unique persons
    for i, m in enumerate(measured):
        r = ratio(m.raw_s, m.warm_s)
        if m.raw_s is None:  # cancelled: the ratio is at least budget / rollup time
            r = scale.raw_budget_s / m.warm_s
        checked = (
            "not checked (raw cancelled)" if m.same is None else ("yes" if m.same else "**NO**")
        )
        report.rows.append(
            Row(
                GROUP,
                f"{m.name}, from the rollup (warm)",
                m.warm_s * 1000,
                "ms",
                "raw events" if m.raw_s is not None else "raw events, cancelled at",
                (m.raw_s if m.raw_s is not None else scale.raw_budget_s) * 1000,
                r,
                "≤ 200 ms and ≥ 50× faster than raw" if i in targeted else None,
                (m.warm_s <= 0.2 and (r or 0) >= 50 and m.same is True) if i in targeted else None,
                f"{size}; same numbers: {checked}; median of {scale.repeats};"
                f" cold (first question of a process) {m.cold_s * 1000:,.0f} ms"
                + ("" if m.raw_s is not None else "; ratio is a lower bound")
                + (f"; {persons:,} persons" if "unique" in m.name else ""),
            )
        )
    report.rows.append(
        Row(
            GROUP,
            f"freshness at {fresh['rate']:,.0f} events/s: attendance → in the day's figures"
            " and the quarterly report (worst probe)",
            fresh["worst_s"],
            "s",
            target="≤ 10 s",
            met=fresh["worst_s"] is not None and fresh["worst_s"] <= 10,
            note=f"{fresh['probes']} probes, median {fresh['median_s']:.1f} s; refresh every"
            f" {fresh['interval_s']:.0f} s; {fresh['written']:,} events written meanwhile",
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


def _freshness(url: str, scale: FiguresScale, *, center: str) -> dict[str, Any]:
    """Probe attendances timed from commit to being counted, while events stream in."""
    from psycopg_pool import ConnectionPool

    from ingest_api.figures import reports, rollup
    from ingest_api.figures.engine import Period
    from ingest_api.figures.refresher import RollupRefresher
    from ingest_api.ingest.writes import insert_events
    from ingest_api.registry import store
    from ingest_api.registry.models import Program

    day = date(YEAR, 12, 31)
    noon = datetime(YEAR, 12, 31, 3, 0, tzinfo=UTC)  # 12:00 in Seoul
    with psycopg.connect(url) as conn:
        store.upsert_program(
            conn,
            program=Program(
                program_id="FRESH-PROBE",
                facility_id=center,
                name="신선도 측정",
                function="service_provision",
                business_area="측정",
                unit_business="측정",
                fee_type="free",
            ),
        )
        enrolled = conn.execute(
            "SELECT e.member_ref, e.program_id, m.facility_id FROM enrolments e"
            " JOIN members m USING (member_ref) WHERE e.member_ref LIKE 'XB-%%' LIMIT 5000"
        ).fetchall()
        conn.commit()
        rollup.refresh(conn)
    interval_s = 2.0
    pool: Any = ConnectionPool(url, min_size=1, max_size=2, open=True)
    refresher = RollupRefresher(pool, interval_s=interval_s)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    written = context.Value("q", 0)
    rng = random.Random(7)  # noqa: S311 - simulation, not crypto
    writer = context.Process(
        target=_write_events,
        args=(url, scale.fresh_rate, [tuple(r) for r in enrolled], noon, stop, written),
        name="fresh-writer",
        daemon=True,
    )
    latencies: list[float] = []
    refresher.start()
    writer.start()
    started = time.perf_counter()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            time.sleep(interval_s)
            for i in range(scale.fresh_probes):
                with conn.transaction(), conn.cursor() as cur:
                    probe = (f"PROBE-{i}", "FRESH-PROBE", center)
                    insert_events(cur, rows=[_event_row(*probe, noon)])
                committed = time.perf_counter()
                while time.perf_counter() - committed < 60:
                    daily = reports.facility_figures(
                        conn, period=Period.day(day), facility_id=center
                    )
                    in_day = next(
                        (r.unique_persons for r in daily if r.program_id == "FRESH-PROBE"), 0
                    )
                    quarter = reports.build_quarterly_report(
                        conn, facility_id=center, year=YEAR, quarter=4
                    )
                    in_report = next(
                        (
                            r.periods[f"{YEAR}-Q4"].total.unique_persons
                            for r in quarter.rows
                            if r.program_id == "FRESH-PROBE"
                        ),
                        0,
                    )
                    if in_day > i and in_report > i:
                        latencies.append(time.perf_counter() - committed)
                        break
                    time.sleep(0.1)
                time.sleep(rng.uniform(0.5, 1.5))
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        writer.join(timeout=30)
        refresher.stop()
        pool.close()
    return {
        "rate": written.value / elapsed,
        "written": written.value,
        "probes": len(latencies),
        "asked_probes": scale.fresh_probes,
        "latencies_s": latencies,
        "worst_s": max(latencies) if len(latencies) == scale.fresh_probes else None,
        "median_s": statistics.median(latencies) if latencies else float("nan"),
        "interval_s": interval_s,
    }


def _event_row(ref: str, program: str, facility: str, at: datetime) -> Any:
    """An accepted attendance as the ingest writes it."""
    from broker.ids import uuid7
    from ingest_api.ingest.validation import EventRow

    return EventRow(
        event_id=uuid7(at),
        occurred_at=at,
        facility_id=facility,
        device_id="fresh-1",
        service_date=(at + timedelta(hours=9)).date(),  # Asia/Seoul
        program_id=program,
        member_ref=ref,
        method="card",
        outcome="accepted",
        ticket_no=None,
        roster_version=None,
        visitor=None,
    )


def _write_events(
    url: str,
    rate: int,
    enrolled: list[tuple[str, str, str]],
    at: datetime,
    stop: Any,
    written: Any,
) -> None:
    """Batches of 100 events, one transaction each, at `rate` events/s (in a process of its
    own, as the ingest is), with the ingest's own insert statement and triggers."""
    from ingest_api.ingest.writes import insert_events

    rng = random.Random(11)  # noqa: S311 - simulation, not crypto
    batch = 100
    count = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        while not stop.is_set():
            picks = rng.choices(enrolled, k=batch)
            when = at + timedelta(seconds=count / rate)
            with conn.cursor() as cur:
                count += insert_events(cur, rows=[_event_row(*p, when) for p in picks])
            conn.commit()
            written.value = count
            ahead = count / rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)


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
